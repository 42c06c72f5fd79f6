"""Garbage, truncated, oversized and out-of-sequence input: the dongle answers with a protocol error
or resynchronises, keeps its state, and answers the next valid PING."""

from __future__ import annotations

import os

import pytest

from dongle.usblink import READ_SIZE, DongleLink
from protocol.errors import DongleError
from protocol.frame import MAX_PAYLOAD, FrameDecoder, FrameType, encode_frame
from protocol.messages import (
    Command,
    LinkError,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)
from protocol.usb import EP_IN, EP_OUT
from tests.fixtures.dongles import Provisioned


def _send_raw(link: DongleLink, data: bytes) -> None:
    link.device.write(EP_OUT, data)
    if len(data) % 64 == 0:
        link.device.write(EP_OUT, b"")


def _read_message(link: DongleLink):  # type: ignore[no-untyped-def]
    data = bytes(link.device.read(EP_IN, READ_SIZE, timeout=1000))
    (frame,) = FrameDecoder().feed(data)
    return frame, decode_message(frame)


def _still_answers(link: DongleLink) -> None:
    assert link.call(Command.PING, {"data": b"alive"})["data"] == b"alive"


@pytest.mark.parametrize(
    "junk",
    [
        b"\xff" * 37,
        os.urandom(64),
        b"TP" + os.urandom(30),
        encode_frame(FrameType.REQUEST, 1, b"\x01\x00\x00\x00\x01\xa0")[:-3],  # truncated
    ],
    ids=["ff", "random-64", "false-marker", "truncated"],
)
def test_garbage_gets_a_link_error_then_ping_works(link: DongleLink, junk: bytes) -> None:
    _send_raw(link, junk)
    frame, message = _read_message(link)
    assert (frame.type, message) == (FrameType.LINK_ERROR, LinkError(Status.INVALID_LENGTH))
    _still_answers(link)


def test_oversized_transfer_is_a_link_error(link: DongleLink) -> None:
    _send_raw(link, b"\x00" * (MAX_PAYLOAD + 500))
    _, message = _read_message(link)
    assert message == LinkError(Status.INVALID_LENGTH)
    _still_answers(link)


def test_wrong_link_version_is_unsupported_version(link: DongleLink) -> None:
    _send_raw(link, encode_frame(FrameType.REQUEST, 3, b"\x01\x00\x00\x00\x01\xa0", version=2))
    _, message = _read_message(link)
    assert message == LinkError(Status.UNSUPPORTED_VERSION)
    _still_answers(link)


def test_request_without_a_header_is_a_link_error(link: DongleLink) -> None:
    _send_raw(link, encode_frame(FrameType.REQUEST, 9, b"\x01\x00"))
    _, message = _read_message(link)
    assert message == LinkError(Status.INVALID_LENGTH)
    _still_answers(link)


def test_malformed_cbor_is_invalid_parameter(link: DongleLink) -> None:
    _send_raw(link, encode_frame(FrameType.REQUEST, 9, b"\x01\x00\x00\x00\x07\xbf\xff"))
    _, message = _read_message(link)
    assert isinstance(message, Response)
    assert (message.status, message.request_id) == (Status.INVALID_PARAMETER, 7)
    _still_answers(link)


def test_unknown_command_is_invalid_command(link: DongleLink) -> None:
    _send_raw(link, encode_frame(FrameType.REQUEST, 9, b"\x7e\x00\x00\x00\x07\xa0"))
    _, message = _read_message(link)
    assert isinstance(message, Response)
    assert message.status == Status.INVALID_COMMAND
    _still_answers(link)


def test_reused_sequence_with_another_request_id_is_invalid_seq(link: DongleLink) -> None:
    _send_raw(link, encode_message(Request(Command.PING, 1, {"data": b"a"}), 40))
    _read_message(link)
    _send_raw(link, encode_message(Request(Command.PING, 2, {"data": b"b"}), 40))
    _, message = _read_message(link)
    assert isinstance(message, Response)
    assert (message.status, message.request_id) == (Status.INVALID_SEQ, 2)
    _still_answers(link)


def test_retransmission_is_answered_from_memory(link: DongleLink, provisioned: Provisioned) -> None:
    request = Request(
        Command.SIGN_SESSION, 77, {"gateway_id": "g", "challenge": bytes(16), "timestamp": 1}
    )
    _send_raw(link, encode_message(request, 50))
    _, first = _read_message(link)
    _send_raw(link, encode_message(request, 50, flags=1))
    _, second = _read_message(link)
    assert first == second  # ECDSA is randomised: equal answers mean it was not signed again


def test_wrong_length_field_is_invalid_parameter(link: DongleLink) -> None:
    with pytest.raises(DongleError) as caught:
        link.call(Command.ATTEST, {"nonce": b"short"})
    assert caught.value.status == Status.INVALID_PARAMETER


def test_bad_input_leaves_state_intact(link: DongleLink, provisioned: Provisioned) -> None:
    before = link.call(Command.GET_INFO)
    for junk in (os.urandom(200), b"TP\x01\x01" + os.urandom(100), b""):
        _send_raw(link, junk)
    after = link.call(Command.GET_INFO)
    assert after == before
