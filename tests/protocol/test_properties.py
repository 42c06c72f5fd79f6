"""Property tests of framing and messages: round trips in any chunking, resynchronisation after
damage, and no exception other than ProtocolError subclasses on arbitrary input.

Each property runs twice: a quick variant in the default suite and a ``slow`` one with many more
examples (``make test-slow``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocol.errors import FrameError, MessageError, ProtocolError
from protocol.frame import MAX_FRAME, Frame, FrameDecoder, FrameFlag, FrameType, encode_frame
from protocol.messages import (
    MAX_DEPTH,
    Cancel,
    Command,
    Keepalive,
    KeepaliveStatus,
    LinkError,
    Message,
    Request,
    Response,
    Status,
    canonical_cbor,
    decode_map,
    decode_message,
    encode_message,
)
from protocol.usb import packets

FAST_EXAMPLES = 200
SLOW_EXAMPLES = 5000


def both_variants(*strategies: st.SearchStrategy[Any]) -> Callable[..., tuple[Any, Any]]:
    """A property as a (fast, slow) pair of tests over the same strategies."""

    def wrap(check: Callable[..., None]) -> tuple[Any, Any]:
        def variant(examples: int) -> Any:
            return settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )(given(*strategies)(check))

        return variant(FAST_EXAMPLES), pytest.mark.slow(variant(SLOW_EXAMPLES))

    return wrap


# --- strategies ---

ints = st.integers(min_value=-(2**64), max_value=2**64 - 1)  # what CBOR holds without a bignum tag
leaves = st.none() | st.booleans() | ints | st.binary(max_size=64) | st.text(max_size=32)


def plain(depth: int) -> st.SearchStrategy[Any]:
    """Plain CBOR values nested at most ``depth`` levels below the current one."""
    if depth == 0:
        return leaves
    inner = st.deferred(lambda: plain(depth - 1))
    return (
        leaves
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    )


# The parameter map is the first of the MAX_DEPTH containers a message may nest.
params = st.dictionaries(st.text(max_size=12), plain(MAX_DEPTH - 1), max_size=6)
request_ids = st.integers(min_value=0, max_value=2**32 - 1)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Request, st.sampled_from(Command), request_ids, params),
    st.builds(Response, st.sampled_from(Status), request_ids, params),
    st.builds(Keepalive, request_ids, st.sampled_from(KeepaliveStatus)),
    st.builds(Cancel, request_ids),
    st.builds(LinkError, st.sampled_from(Status)),
)
seqs = st.integers(min_value=0, max_value=255)
flags = st.sampled_from([FrameFlag.NONE, FrameFlag.RETRANSMIT])
frames = st.builds(encode_frame, st.sampled_from(FrameType), seqs, st.binary(max_size=300), flags)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, deduplicated)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed_all(chunks: list[bytes], decoder: FrameDecoder | None = None) -> list[Frame | FrameError]:
    decoder = decoder or FrameDecoder()
    out: list[Frame | FrameError] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
        assert decoder.buffered <= MAX_FRAME
    return out


def only_frames(out: list[Frame | FrameError]) -> list[Frame]:
    return [item for item in out if isinstance(item, Frame)]


def errors_in(out: list[Frame | FrameError]) -> list[FrameError]:
    return [item for item in out if not isinstance(item, Frame)]


def decode_one(data: bytes) -> Frame:
    (frame,) = FrameDecoder().feed(data)
    assert isinstance(frame, Frame)
    return frame


# --- round trips ---


def _message_round_trip_in_any_chunking(msg: Message, seq: int, flag: int, cuts: list[int]) -> None:
    data = encode_message(msg, seq, flag)
    out = feed_all(chunked(data, cuts))
    assert len(out) == 1 and isinstance(out[0], Frame)
    assert (out[0].seq, out[0].flags) == (seq, flag)
    decoded = decode_message(out[0])
    assert decoded == msg
    # Equality treats True as 1; the re-encoded bytes do not.
    assert encode_message(decoded, seq, flag) == data


(
    test_message_round_trips_in_any_chunking,
    test_message_round_trips_in_any_chunking_slow,
) = both_variants(messages, seqs, flags, st.lists(st.integers(min_value=0), max_size=20))(
    _message_round_trip_in_any_chunking
)


def _message_round_trip_through_usb_packets(msg: Message, seq: int) -> None:
    data = encode_message(msg, seq)
    decoder = FrameDecoder()
    out = feed_all(list(packets(data)), decoder)
    assert [decode_message(f) for f in only_frames(out)] == [msg]
    assert errors_in(out) == [] and decoder.buffered == 0


(
    test_message_round_trips_through_usb_packets,
    test_message_round_trips_through_usb_packets_slow,
) = both_variants(messages, seqs)(_message_round_trip_through_usb_packets)


def _stream_of_frames_decodes_in_order(stream: list[bytes], cuts: list[int]) -> None:
    out = feed_all(chunked(b"".join(stream), cuts))
    assert errors_in(out) == []
    assert only_frames(out) == [decode_one(f) for f in stream]


(
    test_stream_of_frames_decodes_in_order,
    test_stream_of_frames_decodes_in_order_slow,
) = both_variants(
    st.lists(frames, min_size=1, max_size=6), st.lists(st.integers(min_value=0), max_size=30)
)(_stream_of_frames_decodes_in_order)


# --- damage and resynchronisation ---


def _flipped_byte_is_rejected_and_next_frame_found(
    damaged: bytes, good: bytes, index: int, mask: int
) -> None:
    index %= len(damaged)
    broken = bytearray(damaged)
    broken[index] ^= mask
    out = feed_all([bytes(broken) + good])
    assert only_frames(out) == [decode_one(good)]
    if index >= 2:  # with the start marker intact the decoder must say what it rejected
        assert errors_in(out)


(
    test_flipped_byte_is_rejected_and_next_frame_found,
    test_flipped_byte_is_rejected_and_next_frame_found_slow,
) = both_variants(
    frames, frames, st.integers(min_value=0), st.integers(min_value=1, max_value=255)
)(_flipped_byte_is_rejected_and_next_frame_found)


def _whole_transfer_decodes_as_its_bytes_one_by_one(
    frame: bytes, index: int, mask: int, tail: bytes
) -> None:
    # A transfer holding just one frame is parsed straight from the chunk; whatever it holds,
    # damaged or followed by more, the outcome must be what the buffered path gives byte by byte.
    broken = bytearray(frame)
    broken[index % len(frame)] ^= mask
    transfer = bytes(broken) + tail

    def outcome(chunks: list[bytes]) -> list[tuple[str, Any]]:
        decoder = FrameDecoder()
        out = feed_all(chunks, decoder) + feed_all([frame], decoder)
        return [(type(i).__name__, i if isinstance(i, Frame) else str(i)) for i in out]

    assert outcome([transfer]) == outcome([bytes([b]) for b in transfer])


(
    test_whole_transfer_decodes_as_its_bytes_one_by_one,
    test_whole_transfer_decodes_as_its_bytes_one_by_one_slow,
) = both_variants(
    frames,
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=255),
    st.binary(max_size=20),
)(_whole_transfer_decodes_as_its_bytes_one_by_one)


def _truncated_frame_is_rejected_and_next_frames_found(
    damaged: bytes, good: bytes, keep: int
) -> None:
    keep = 1 + keep % (len(damaged) - 1)
    # When the bytes cut off equal the start of the next frame, nothing was lost at all.
    assume(not (damaged[:keep] + good * 2).startswith(damaged))
    # A truncated frame swallows what follows it until its announced length is reached, so send
    # enough good frames behind it for every one of them to come out again.
    copies = 2 + len(damaged) // len(good)
    out = feed_all([damaged[:keep] + good * copies])
    assert only_frames(out) == [decode_one(good)] * copies
    if keep >= 2:
        assert errors_in(out)


(
    test_truncated_frame_is_rejected_and_next_frames_found,
    test_truncated_frame_is_rejected_and_next_frames_found_slow,
) = both_variants(frames, frames, st.integers(min_value=0))(
    _truncated_frame_is_rejected_and_next_frames_found
)


def _garbage_before_a_frame_is_skipped(garbage: bytes, good: bytes, cuts: list[int]) -> None:
    out = feed_all(chunked(garbage + good, cuts))
    assert only_frames(out) == [decode_one(good)]


(
    test_garbage_before_a_frame_is_skipped,
    test_garbage_before_a_frame_is_skipped_slow,
) = both_variants(
    st.binary(max_size=200) | st.lists(st.sampled_from([b"T", b"P", b"TP", b"\x01"])).map(b"".join),
    frames,
    st.lists(st.integers(min_value=0), max_size=10),
)(_garbage_before_a_frame_is_skipped)


# --- arbitrary input ---


def _arbitrary_bytes_yield_only_frames_or_frame_errors(
    pieces: list[bytes], cuts: list[int]
) -> None:
    decoder = FrameDecoder()
    for item in feed_all(chunked(b"".join(pieces), cuts), decoder):
        assert isinstance(item, Frame | FrameError)
        if isinstance(item, Frame):
            with contextlib.suppress(MessageError):
                decode_message(item)


(
    test_arbitrary_bytes_yield_only_frames_or_frame_errors,
    test_arbitrary_bytes_yield_only_frames_or_frame_errors_slow,
) = both_variants(
    st.lists(st.binary(max_size=300) | frames | st.just(b"TP\x01"), max_size=8),
    st.lists(st.integers(min_value=0), max_size=20),
)(_arbitrary_bytes_yield_only_frames_or_frame_errors)


def _huge_input_never_buffers_more_than_a_frame(chunk: bytes, repeats: int) -> None:
    decoder = FrameDecoder()
    for _ in range(repeats):
        decoder.feed(chunk)
        assert decoder.buffered <= MAX_FRAME


(
    test_huge_input_never_buffers_more_than_a_frame,
    test_huge_input_never_buffers_more_than_a_frame_slow,
) = both_variants(
    st.sampled_from([b"T", b"TP", b"\x00", b"TP\x01\x01"]).map(lambda b: b * 4096),
    st.integers(min_value=1, max_value=8),
)(_huge_input_never_buffers_more_than_a_frame)


def _arbitrary_payload_decodes_or_raises_message_error(ftype: FrameType, payload: bytes) -> None:
    try:
        msg = decode_message(Frame(ftype, 0, payload))
    except ProtocolError as exc:
        assert isinstance(exc, MessageError)
        return
    # What was accepted must be the one canonical encoding of what was decoded.
    assert encode_message(msg, 0)[10:-4] in (payload, payload + b"\xa0")


(
    test_arbitrary_payload_decodes_or_raises_message_error,
    test_arbitrary_payload_decodes_or_raises_message_error_slow,
) = both_variants(
    st.sampled_from(FrameType),
    st.binary(max_size=64) | params.map(canonical_cbor).map(lambda b: b"\x01\x00\x00\x00\x01" + b),
)(_arbitrary_payload_decodes_or_raises_message_error)


def _arbitrary_cbor_decodes_to_a_map_or_raises_message_error(data: bytes) -> None:
    try:
        value = decode_map(data)
    except ProtocolError as exc:
        assert isinstance(exc, MessageError)
        return
    assert isinstance(value, dict)
    assert not data or canonical_cbor(value) == data


(
    test_arbitrary_cbor_decodes_to_a_map_or_raises_message_error,
    test_arbitrary_cbor_decodes_to_a_map_or_raises_message_error_slow,
) = both_variants(
    st.binary(max_size=64)
    | st.binary(max_size=63).map(lambda b: b"\xa1" + b)
    | params.map(canonical_cbor).flatmap(
        lambda b: st.integers(min_value=0, max_value=max(len(b) - 1, 0)).map(
            lambda i: b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :] if b else b
        )
    )
)(_arbitrary_cbor_decodes_to_a_map_or_raises_message_error)


def _canonical_params_always_decode(value: dict[str, Any]) -> None:
    assert canonical_cbor(decode_map(canonical_cbor(value))) == canonical_cbor(value)


(
    test_canonical_params_always_decode,
    test_canonical_params_always_decode_slow,
) = both_variants(params)(_canonical_params_always_decode)
