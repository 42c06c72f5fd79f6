"""The reference implementation against every vector in tests/vectors (docs/protocol.md §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol import errors, pin, signing
from protocol.frame import Frame, FrameDecoder, FrameType, encode_frame
from protocol.messages import decode_message, encode_message, encode_payload
from protocol.usb import packets
from tests.vectors import generate

VECTORS = Path(generate.__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


FRAMES = load("frames.json")
MESSAGES = load("messages.json")
SIGNED = load("signed_payloads.json")
PIN = load("pin_protocol.json")


def by_name(entries: list[dict[str, Any]]) -> Any:
    return pytest.mark.parametrize("vector", entries, ids=[e["name"] for e in entries])


def decoder_output(data: bytes) -> list[dict[str, Any]]:
    out = []
    for item in FrameDecoder().feed(data):
        if isinstance(item, Frame):
            out.append(
                {
                    "type": item.type.name,
                    "seq": item.seq,
                    "flags": item.flags,
                    "payload": item.payload.hex(),
                }
            )
        else:
            out.append({"error": type(item).__name__})
    return out


@pytest.mark.parametrize("name", sorted(generate.GENERATORS))
def test_committed_vectors_match_the_generator(name: str) -> None:
    assert (VECTORS / name).read_text(encoding="utf-8") == generate.render(name)


# --- frames ---


@by_name(FRAMES["frames"])
def test_frame_encodes_to_the_vector_bytes(vector: dict[str, Any]) -> None:
    frame = encode_frame(
        FrameType[vector["type"]], vector["seq"], bytes.fromhex(vector["payload"]), vector["flags"]
    )
    assert frame.hex() == vector["frame"]


@by_name(FRAMES["frames"])
def test_frame_is_cut_into_the_vector_packets(vector: dict[str, Any]) -> None:
    assert [p.hex() for p in packets(bytes.fromhex(vector["frame"]))] == vector["packets"]


@by_name(FRAMES["frames"])
def test_frame_packets_decode_to_the_vector_fields(vector: dict[str, Any]) -> None:
    decoder = FrameDecoder()
    out = []
    for packet in vector["packets"]:
        out += decoder.feed(bytes.fromhex(packet))
    assert out == [
        Frame(
            FrameType[vector["type"]],
            vector["seq"],
            bytes.fromhex(vector["payload"]),
            vector["flags"],
        )
    ]
    assert decoder.buffered == 0


@by_name(FRAMES["bad"])
def test_bad_frame_gives_the_vector_error_then_the_next_frame(vector: dict[str, Any]) -> None:
    assert decoder_output(bytes.fromhex(vector["bytes"])) == vector["expect"]


@by_name(FRAMES["bad"])
def test_bad_frame_gives_the_same_output_byte_by_byte(vector: dict[str, Any]) -> None:
    decoder = FrameDecoder()
    kinds = []
    for byte in bytes.fromhex(vector["bytes"]):
        for item in decoder.feed(bytes([byte])):
            kinds.append(type(item).__name__)
    expected = ["Frame" if "type" in e else e["error"] for e in vector["expect"]]
    assert kinds == expected


# --- messages ---


@by_name(MESSAGES["messages"])
def test_message_encodes_to_the_vector_payload(vector: dict[str, Any]) -> None:
    msg = generate.message_from_json(vector["message"])
    ftype, payload = encode_payload(msg)
    assert (ftype.name, payload.hex()) == (vector["frame_type"], vector["payload"])


@by_name(MESSAGES["messages"])
def test_message_encodes_to_the_vector_frame(vector: dict[str, Any]) -> None:
    msg = generate.message_from_json(vector["message"])
    assert encode_message(msg, vector["seq"], vector["flags"]).hex() == vector["frame"]


@by_name(MESSAGES["messages"])
def test_message_frame_decodes_to_the_vector_fields(vector: dict[str, Any]) -> None:
    (frame,) = FrameDecoder().feed(bytes.fromhex(vector["frame"]))
    assert isinstance(frame, Frame)
    assert (frame.seq, frame.flags) == (vector["seq"], vector["flags"])
    decoded = decode_message(frame)
    assert generate.message_to_json(decoded) == vector["message"]


@by_name(MESSAGES["bad"])
def test_bad_message_payload_raises_the_vector_error(vector: dict[str, Any]) -> None:
    frame = Frame(FrameType[vector["frame_type"]], 0, bytes.fromhex(vector["payload"]))
    with pytest.raises(errors.MessageError):
        decode_message(frame)
    assert vector["error"] == errors.MessageError.__name__


# --- signed payloads ---

LAYOUTS = {
    cls.__name__: cls
    for cls in (
        signing.PaymentAuthorization,
        signing.SessionChallenge,
        signing.ProvisioningAttestation,
    )
}


@by_name(SIGNED["payloads"])
def test_layout_gives_the_vector_signed_bytes(vector: dict[str, Any]) -> None:
    layout = LAYOUTS[vector["layout"]].from_dict(generate.from_json(vector["fields"]))
    assert layout.signed_bytes().hex() == vector["signed_bytes"]


@by_name(SIGNED["payloads"])
def test_layout_round_trips_through_to_dict(vector: dict[str, Any]) -> None:
    fields = generate.from_json(vector["fields"])
    assert LAYOUTS[vector["layout"]].from_dict(fields).to_dict() == fields


@by_name(SIGNED["payloads"])
def test_vector_signature_verifies_under_the_vector_key(vector: dict[str, Any]) -> None:
    key = signing.load_public_key(bytes.fromhex(vector["public_key"]))
    assert signing.verify(
        key, bytes.fromhex(vector["signed_bytes"]), bytes.fromhex(vector["signature"])
    )


@by_name(SIGNED["payloads"])
def test_reference_signature_of_vector_bytes_verifies(vector: dict[str, Any]) -> None:
    scalar = (
        SIGNED["attestation_private_key"]
        if vector["layout"] == "ProvisioningAttestation"
        else SIGNED["payment_private_key"]
    )
    key = ec.derive_private_key(int(scalar, 16), ec.SECP256R1())
    assert signing.public_key_bytes(key.public_key()).hex() == vector["public_key"]
    data = bytes.fromhex(vector["signed_bytes"])
    assert signing.verify(key.public_key(), data, signing.sign(key, data))


@by_name(SIGNED["bad"])
def test_bad_fields_raise_the_vector_error(vector: dict[str, Any]) -> None:
    with pytest.raises(getattr(errors, vector["error"])):
        LAYOUTS[vector["layout"]].from_dict(generate.from_json(vector["fields"]))


# --- PIN protocol ---


def test_pin_vector_keys_derive_the_vector_shared_key_on_both_sides() -> None:
    host = ec.derive_private_key(int(PIN["host_private_key"], 16), ec.SECP256R1())
    dongle = ec.derive_private_key(int(PIN["dongle_private_key"], 16), ec.SECP256R1())
    assert pin.derive_key(host, bytes.fromhex(PIN["dongle_public_key"])).hex() == PIN["shared_key"]
    assert pin.derive_key(dongle, bytes.fromhex(PIN["host_public_key"])).hex() == PIN["shared_key"]


def test_pin_vector_public_keys_belong_to_the_private_keys() -> None:
    for side in ("host", "dongle"):
        key = ec.derive_private_key(int(PIN[f"{side}_private_key"], 16), ec.SECP256R1())
        assert signing.public_key_bytes(key.public_key()).hex() == PIN[f"{side}_public_key"]


def test_host_session_derives_the_vector_shared_key() -> None:
    host = ec.derive_private_key(int(PIN["host_private_key"], 16), ec.SECP256R1())
    session = pin.HostPinSession.start(bytes.fromhex(PIN["dongle_public_key"]), host)
    assert (session.public_key.hex(), session.shared_key.hex()) == (
        PIN["host_public_key"],
        PIN["shared_key"],
    )


def test_pin_hash_matches_the_vector() -> None:
    assert pin.pin_hash(PIN["pin"]).hex() == PIN["pin_hash"]


@by_name(PIN["ciphertexts"])
def test_pin_encryption_gives_the_vector_ciphertext(vector: dict[str, Any]) -> None:
    blob = pin.encrypt(
        bytes.fromhex(PIN["shared_key"]),
        bytes.fromhex(vector["plaintext"]),
        vector["aad"].encode("ascii"),
        bytes.fromhex(vector["nonce"]),
    )
    assert blob.hex() == vector["ciphertext"]


@by_name(PIN["ciphertexts"])
def test_pin_vector_ciphertext_decrypts_to_the_plaintext(vector: dict[str, Any]) -> None:
    plaintext = pin.decrypt(
        bytes.fromhex(PIN["shared_key"]),
        bytes.fromhex(vector["ciphertext"]),
        vector["aad"].encode("ascii"),
    )
    assert plaintext.hex() == vector["plaintext"]


def test_pin_vector_plaintexts_are_the_named_values() -> None:
    plain = {c["name"]: bytes.fromhex(c["plaintext"]) for c in PIN["ciphertexts"]}
    assert plain == {
        "pin_hash_enc": bytes.fromhex(PIN["pin_hash"]),
        "new_pin_enc": PIN["new_pin"].encode("ascii"),
        "puk_enc": PIN["puk"].encode("ascii"),
        "pin_token_enc": bytes.fromhex(PIN["pin_token"]),
    }


def test_host_session_reads_the_vector_pin_token() -> None:
    session = pin.HostPinSession(
        bytes.fromhex(PIN["host_public_key"]), bytes.fromhex(PIN["shared_key"])
    )
    (enc,) = [c for c in PIN["ciphertexts"] if c["name"] == "pin_token_enc"]
    assert session.pin_token(bytes.fromhex(enc["ciphertext"])).hex() == PIN["pin_token"]


def test_pin_auth_message_is_canonical_cbor_of_the_vector_fields() -> None:
    message = pin.sign_request_message(generate.from_json(PIN["pin_auth_fields"]))
    assert message.hex() == PIN["pin_auth_message"]


def test_pin_auth_matches_the_vector() -> None:
    token = bytes.fromhex(PIN["pin_token"])
    message = bytes.fromhex(PIN["pin_auth_message"])
    assert pin.pin_auth(token, message).hex() == PIN["pin_auth"]
    assert pin.verify_pin_auth(token, message, bytes.fromhex(PIN["pin_auth"]))
