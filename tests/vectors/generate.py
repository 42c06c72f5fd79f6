"""(Re)generate the protocol test vectors in tests/vectors/*.json (docs/protocol.md §7).

Run ``python -m tests.vectors.generate`` (from the repository root) after a deliberate change of the wire format or of a
signed layout; the output is byte-for-byte reproducible (fixed keys, nonces and request ids, and
RFC 6979 deterministic ECDSA), and tests/protocol/test_vectors.py fails if the committed files
drift from what this script produces.

JSON cannot hold byte strings, so CBOR values are written with bytes as ``{"$bytes": "<hex>"}``;
every other byte sequence (frames, payloads, keys, ciphertexts) is a plain hex string.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from protocol import pin, signing
from protocol.frame import HEADER, MAGIC, FrameFlag, FrameType, encode_frame
from protocol.messages import (
    Cancel,
    Command,
    Keepalive,
    KeepaliveStatus,
    LinkError,
    Message,
    Request,
    Response,
    Status,
    encode_message,
    encode_payload,
)
from protocol.usb import packets

VECTOR_DIR = Path(__file__).resolve().parent
BYTES_KEY = "$bytes"

# Test-only keys: never provisioned into a real dongle.
PAYMENT_KEY = 0x5A3B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F1A2B3C4D5E6F7A8B
ATTEST_KEY = 0x1F2E3D4C5B6A79880F1E2D3C4B5A69780A1B2C3D4E5F60718293A4B5C6D7E8F9
HOST_KEY = 0x3C1F0E2D4B5A69788796A5B4C3D2E1F00112233445566778899AABBCCDDEEFF0
DONGLE_KEY = 0x7D6C5B4A39281706F5E4D3C2B1A09F8E7D6C5B4A3928170615243342516070F1


def to_json(value: Any) -> Any:
    """A CBOR-able value as JSON, bytes wrapped as {"$bytes": hex}."""
    if isinstance(value, bytes):
        return {BYTES_KEY: value.hex()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(value: Any) -> Any:
    """The inverse of ``to_json``."""
    if isinstance(value, dict):
        if set(value) == {BYTES_KEY}:
            return bytes.fromhex(value[BYTES_KEY])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def private_key(scalar: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(scalar, ec.SECP256R1())


def message_to_json(msg: Message) -> dict[str, Any]:
    if isinstance(msg, Request):
        return {
            "kind": "Request",
            "command": msg.command.name,
            "request_id": msg.request_id,
            "params": to_json(msg.params),
        }
    if isinstance(msg, Response):
        return {
            "kind": "Response",
            "status": msg.status.name,
            "request_id": msg.request_id,
            "body": to_json(msg.body),
        }
    if isinstance(msg, Keepalive):
        return {"kind": "Keepalive", "request_id": msg.request_id, "status": msg.status.name}
    if isinstance(msg, Cancel):
        return {"kind": "Cancel", "request_id": msg.request_id}
    return {"kind": "LinkError", "status": msg.status.name}


def message_from_json(data: dict[str, Any]) -> Message:
    kind = data["kind"]
    if kind == "Request":
        return Request(Command[data["command"]], data["request_id"], from_json(data["params"]))
    if kind == "Response":
        return Response(Status[data["status"]], data["request_id"], from_json(data["body"]))
    if kind == "Keepalive":
        return Keepalive(data["request_id"], KeepaliveStatus[data["status"]])
    if kind == "Cancel":
        return Cancel(data["request_id"])
    return LinkError(Status[data["status"]])


# --- frames -------------------------------------------------------------------------------------


def _raw_frame(
    version: int, ftype: int, flags: int, seq: int, length: int, payload: bytes
) -> bytes:
    """A frame built by hand, so bad ones can carry a valid header check or CRC where needed."""
    header = HEADER.pack(MAGIC, version, ftype, flags, seq, length)
    body = header + struct.pack(">H", binascii.crc_hqx(header, 0xFFFF)) + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _frame_entry(name: str, ftype: FrameType, seq: int, payload: bytes, flags: int = 0) -> dict:
    frame = encode_frame(ftype, seq, payload, flags)
    return {
        "name": name,
        "type": ftype.name,
        "seq": seq,
        "flags": flags,
        "payload": payload.hex(),
        "frame": frame.hex(),
        "packets": [p.hex() for p in packets(frame)],
    }


def frames() -> dict[str, Any]:
    good = [
        _frame_entry("empty request", FrameType.REQUEST, 0, b""),
        _frame_entry("ping request", FrameType.REQUEST, 1, bytes.fromhex("0100000001a0")),
        _frame_entry(
            "retransmitted request",
            FrameType.REQUEST,
            255,
            b"\x02\x00\x00\x00\x07\xa0",
            FrameFlag.RETRANSMIT,
        ),
        # 10 + 50 + 4 = 64 bytes: exactly one packet, so a zero-length packet ends the transfer.
        _frame_entry("one full packet", FrameType.RESPONSE, 2, bytes(range(50))),
        _frame_entry("three packets", FrameType.RESPONSE, 3, bytes(range(150))),
        _frame_entry("keepalive", FrameType.KEEPALIVE, 4, bytes.fromhex("0000000401")),
        _frame_entry("cancel", FrameType.CANCEL, 5, bytes.fromhex("00000005")),
        _frame_entry("link error", FrameType.LINK_ERROR, 0, b"\x03"),
        _frame_entry("largest frame", FrameType.RESPONSE, 6, bytes(i % 251 for i in range(8192))),
    ]
    follower = encode_frame(FrameType.REQUEST, 9, b"\x01\x00\x00\x00\x09\xa0")
    after = {"type": "REQUEST", "seq": 9, "flags": 0, "payload": "0100000009a0"}
    sample = bytes.fromhex("0100000001a0")
    good_raw = _raw_frame(1, FrameType.REQUEST, 0, 1, len(sample), sample)
    header_broken = bytearray(good_raw)
    header_broken[8] ^= 0xFF
    crc_broken = bytearray(good_raw)
    crc_broken[-1] ^= 0x01
    payload_broken = bytearray(good_raw)
    payload_broken[12] ^= 0x80
    bad_cases = [
        ("bad header check", bytes(header_broken), "FrameHeaderError"),
        ("bad CRC-32", bytes(crc_broken), "FrameCrcError"),
        ("payload byte flipped", bytes(payload_broken), "FrameCrcError"),
        ("link version 2", _raw_frame(2, FrameType.REQUEST, 0, 1, 6, sample), "FrameVersionError"),
        ("link version 0", _raw_frame(0, FrameType.REQUEST, 0, 1, 6, sample), "FrameVersionError"),
        ("payload too long", _raw_frame(1, FrameType.REQUEST, 0, 1, 8193, b""), "FrameLengthError"),
        ("unknown type 0x06", _raw_frame(1, 0x06, 0, 1, 6, sample), "FrameTypeError"),
        ("unknown type 0x00", _raw_frame(1, 0x00, 0, 1, 6, sample), "FrameTypeError"),
    ]
    bad = [
        {
            "name": name,
            "bytes": (data + follower).hex(),
            "expect": [{"error": error}, after],
        }
        for name, data, error in bad_cases
    ]
    bad.append(
        {
            "name": "garbage then a frame",
            "bytes": (b"\x00TTxTP" + follower).hex(),
            "expect": [{"error": "FrameHeaderError"}, after],
        }
    )
    return {
        "description": "Link-layer frames (docs/protocol.md §2) and their 64-byte USB packets "
        "(§1); bad frames fed to a fresh decoder, followed by a good one, with the decoder's "
        "output in order.",
        "frames": good,
        "bad": bad,
    }


# --- messages -----------------------------------------------------------------------------------

_SAMPLE_MESSAGES: list[tuple[str, Message, int, int]] = [
    ("ping", Request(Command.PING, 0x01020304, {"data": b"hello"}), 1, 0),
    ("get info, no params", Request(Command.GET_INFO, 2, {}), 2, 0),
    ("get info with version", Request(Command.GET_INFO, 3, {"version": 1}), 3, 0),
    (
        "sign payment, retransmitted",
        Request(
            Command.SIGN_PAYMENT,
            0xFFFFFFFF,
            {
                "fields": {
                    "gateway_id": "gw-test",
                    "challenge": bytes(range(16)),
                    "payment_id": "pay-0001",
                    "biller": "State Grid",
                    "account": "1234567890",
                    "bill_ref": "2024-05",
                    "amount_fen": 12345,
                    "currency": "CNY",
                    "timestamp": 1717171717,
                },
                "pin_auth": bytes(16),
            },
        ),
        4,
        FrameFlag.RETRANSMIT,
    ),
    ("wipe", Request(Command.WIPE, 5, {"confirm": "WIPE"}), 5, 0),
    (
        "info response",
        Response(
            Status.OK,
            2,
            {
                "serial": "TVP0000A1B2C3",
                "firmware": "1.0.0",
                "versions": [1],
                "max_payload": 8192,
                "capabilities": ["pin2", "idempotent-sign", "keepalive", "cancel", "attest"],
                "algorithms": [-7],
                "state": "locked",
                "key_rev": 1,
                "counter": 42,
                "pin_set": True,
                "pin_retries": 3,
                "puk_retries": 10,
                "certificate": True,
            },
        ),
        2,
        0,
    ),
    ("read cert, none", Response(Status.OK, 6, {"certificate": None}), 6, 0),
    ("wrong PIN", Response(Status.PIN_INVALID, 7, {"message": "wrong PIN", "retries": 2}), 7, 0),
    ("empty OK", Response(Status.OK, 8, {}), 8, 0),
    ("keepalive processing", Keepalive(9, KeepaliveStatus.PROCESSING), 9, 0),
    ("keepalive waiting", Keepalive(9, KeepaliveStatus.WAITING), 9, 0),
    ("cancel", Cancel(9), 9, 0),
    ("link error", LinkError(Status.INVALID_LENGTH), 0, 0),
    ("card status", Request(Command.CARD_STATUS, 10, {}), 10, 0),
    (
        "card status, card in",
        Response(
            Status.OK,
            10,
            {
                "present": True,
                "atr": bytes.fromhex("3b6c000054565043") + bytes(8),
                "slot_events": 3,
            },
        ),
        10,
        0,
    ),
    (
        "card transmit, read binary",
        Request(Command.CARD_TRANSMIT, 11, {"apdu": bytes.fromhex("00b0810020"), "slot_events": 3}),
        11,
        0,
    ),
    ("card transmit answer", Response(Status.OK, 11, {"rapdu": bytes(32) + b"\x90\x00"}), 11, 0),
    (
        "card absent",
        Response(Status.CARD_ABSENT, 12, {"message": "no card in the slot", "slot_events": 4}),
        12,
        0,
    ),
    (
        "card changed",
        Response(
            Status.CARD_CHANGED,
            13,
            {"message": "the card was taken out or replaced since slot event 3", "slot_events": 5},
        ),
        13,
        0,
    ),
]

_BAD_MESSAGES: list[tuple[str, FrameType, str]] = [
    ("request shorter than its header", FrameType.REQUEST, "01000000"),
    ("unknown command", FrameType.REQUEST, "7e00000001a0"),
    ("unknown status", FrameType.RESPONSE, "7e00000001a0"),
    ("params not a map", FrameType.REQUEST, "010000000180"),
    ("map keys not sorted", FrameType.REQUEST, "0100000001a2616201616102"),
    ("integer not in shortest form", FrameType.REQUEST, "0100000001a161611801"),
    ("trailing bytes", FrameType.REQUEST, "0100000001a0a0"),
    ("duplicate keys", FrameType.REQUEST, "0100000001a2616101616102"),
    ("indefinite-length map", FrameType.REQUEST, "0100000001bf6161a0ff"),
    ("float value", FrameType.REQUEST, "0100000001a16161f93c00"),
    ("tagged value", FrameType.REQUEST, "0100000001a16161c24101"),
    ("integer map key", FrameType.REQUEST, "0100000001a1016161"),
    ("truncated CBOR", FrameType.RESPONSE, "0000000001a2616101"),
    ("nested deeper than 8", FrameType.REQUEST, "0100000001a16161" + "81" * 9 + "00"),
    ("keepalive too short", FrameType.KEEPALIVE, "00000001"),
    ("unknown keepalive status", FrameType.KEEPALIVE, "0000000107"),
    ("cancel too long", FrameType.CANCEL, "0000000100"),
    ("link error empty", FrameType.LINK_ERROR, ""),
    ("link error unknown status", FrameType.LINK_ERROR, "7e"),
]


def messages() -> dict[str, Any]:
    good = []
    for name, msg, seq, flags in _SAMPLE_MESSAGES:
        ftype, payload = encode_payload(msg)
        good.append(
            {
                "name": name,
                "message": message_to_json(msg),
                "seq": seq,
                "flags": int(flags),
                "frame_type": ftype.name,
                "payload": payload.hex(),
                "frame": encode_message(msg, seq, flags).hex(),
            }
        )
    bad = [
        {"name": name, "frame_type": ftype.name, "payload": payload, "error": "MessageError"}
        for name, ftype, payload in _BAD_MESSAGES
    ]
    return {
        "description": "Messages (docs/protocol.md §3): the frame payload and the whole frame "
        "each encodes to; malformed payloads in intact frames, with the error a decoder raises. "
        'Byte strings inside CBOR values are written as {"$bytes": hex}.',
        "messages": good,
        "bad": bad,
    }


# --- signed payloads ----------------------------------------------------------------------------

_PAYMENT = {
    "alg": -7,
    "gateway_id": "tvpay-gw-test",
    "dongle_id": "TVP0000A1B2C3",
    "key_rev": 1,
    "counter": 42,
    "challenge": bytes(range(0x10, 0x30)),
    "payment_id": "0f8e2c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    "biller": "国网电力 State Grid",
    "account": "3100123456789",
    "bill_ref": "2024-05",
    "amount_fen": 12345,
    "currency": "CNY",
    "timestamp": 1717171717,
    # SHA-256 of the confirmation text "确认缴费\n金额：¥123.45" (UTF-8, NFC)
    "display_hash": hashlib.sha256("确认缴费\n金额：¥123.45".encode()).digest(),
}
_SESSION = {
    "alg": -7,
    "gateway_id": "tvpay-gw-test",
    "dongle_id": "TVP0000A1B2C3",
    "key_rev": 1,
    "challenge": bytes(range(0x40, 0x60)),
    "timestamp": 1717171700,
}
_ATTEST = {
    "alg": -7,
    "dongle_id": "TVP0000A1B2C3",
    "key_rev": 0,
    "public_key": b"",
    "nonce": bytes(range(0x80, 0xA0)),
}

_BAD_PAYLOADS: list[tuple[str, str, dict[str, Any]]] = [
    ("amount zero", "PaymentAuthorization", {**_PAYMENT, "amount_fen": 0}),
    ("amount above 10^12", "PaymentAuthorization", {**_PAYMENT, "amount_fen": 10**12 + 1}),
    ("amount is a bool", "PaymentAuthorization", {**_PAYMENT, "amount_fen": True}),
    ("currency lowercase", "PaymentAuthorization", {**_PAYMENT, "currency": "cny"}),
    ("challenge too short", "PaymentAuthorization", {**_PAYMENT, "challenge": bytes(15)}),
    ("challenge too long", "PaymentAuthorization", {**_PAYMENT, "challenge": bytes(65)}),
    ("empty biller", "PaymentAuthorization", {**_PAYMENT, "biller": ""}),
    ("biller of 65 characters", "PaymentAuthorization", {**_PAYMENT, "biller": "x" * 65}),
    ("control character", "PaymentAuthorization", {**_PAYMENT, "account": "31001\n23"}),
    ("negative counter", "PaymentAuthorization", {**_PAYMENT, "counter": -1}),
    ("counter above 32 bits", "PaymentAuthorization", {**_PAYMENT, "counter": 2**32}),
    ("unknown algorithm", "PaymentAuthorization", {**_PAYMENT, "alg": -8}),
    ("missing field", "PaymentAuthorization", {k: v for k, v in _PAYMENT.items() if k != "biller"}),
    ("unknown field", "PaymentAuthorization", {**_PAYMENT, "tip_fen": 1}),
    ("display hash of 31 bytes", "PaymentAuthorization", {**_PAYMENT, "display_hash": bytes(31)}),
    ("session challenge too short", "SessionChallenge", {**_SESSION, "challenge": bytes(8)}),
    ("session timestamp negative", "SessionChallenge", {**_SESSION, "timestamp": -1}),
    ("attest key of 33 bytes", "ProvisioningAttestation", {**_ATTEST, "public_key": bytes(33)}),
    ("attest nonce too short", "ProvisioningAttestation", {**_ATTEST, "nonce": bytes(15)}),
]


def _sign_deterministic(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    der = key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signed_payloads() -> dict[str, Any]:
    payment_key = private_key(PAYMENT_KEY)
    attest_key = private_key(ATTEST_KEY)
    payment_public = signing.public_key_bytes(payment_key.public_key())
    attest_public = signing.public_key_bytes(attest_key.public_key())
    cases = [
        ("payment", signing.PaymentAuthorization, _PAYMENT, payment_key, payment_public),
        ("session", signing.SessionChallenge, _SESSION, payment_key, payment_public),
        (
            "attestation before key generation",
            signing.ProvisioningAttestation,
            _ATTEST,
            attest_key,
            attest_public,
        ),
        (
            "attestation with payment key",
            signing.ProvisioningAttestation,
            {**_ATTEST, "key_rev": 1, "public_key": payment_public},
            attest_key,
            attest_public,
        ),
    ]
    good = []
    for name, layout, fields, key, public in cases:
        data = layout.from_dict(fields).signed_bytes()
        good.append(
            {
                "name": name,
                "layout": layout.__name__,
                "fields": to_json(fields),
                "signed_bytes": data.hex(),
                "public_key": public.hex(),
                "signature": _sign_deterministic(key, data).hex(),
            }
        )
    bad = [
        {"name": name, "layout": layout, "fields": to_json(fields), "error": "PayloadError"}
        for name, layout, fields in _BAD_PAYLOADS
    ]
    return {
        "description": "Signed layouts (docs/protocol.md §5): fields, the exact signed bytes, and "
        "an ES256 signature (raw r||s, RFC 6979 deterministic here; any valid signature is "
        "acceptable) that verifies under public_key (SEC1). Invalid field sets with their error.",
        "payment_private_key": f"{PAYMENT_KEY:064x}",
        "attestation_private_key": f"{ATTEST_KEY:064x}",
        "payloads": good,
        "bad": bad,
    }


# --- PIN protocol -------------------------------------------------------------------------------


def pin_protocol() -> dict[str, Any]:
    host = private_key(HOST_KEY)
    dongle = private_key(DONGLE_KEY)
    host_public = signing.public_key_bytes(host.public_key())
    dongle_public = signing.public_key_bytes(dongle.public_key())
    shared = pin.derive_key(host, dongle_public)
    if pin.derive_key(dongle, host_public) != shared:
        raise AssertionError("ECDH is not symmetric: the reference implementation is broken")
    the_pin, new_pin, puk = "482916", "730514", "80261947"
    pin_token = bytes(range(0xA0, 0xC0))
    fields = {
        "gateway_id": "tvpay-gw-test",
        "challenge": bytes(range(0x10, 0x30)),
        "payment_id": "0f8e2c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        "biller": "国网电力 State Grid",
        "account": "3100123456789",
        "bill_ref": "2024-05",
        "amount_fen": 12345,
        "currency": "CNY",
        "timestamp": 1717171717,
    }
    message = pin.sign_request_message(fields)
    ciphertexts = []
    for name, plaintext, aad, nonce_byte in (
        ("pin_hash_enc", pin.pin_hash(the_pin), pin.AAD_PIN_HASH, 0x01),
        ("new_pin_enc", new_pin.encode("ascii"), pin.AAD_NEW_PIN, 0x02),
        ("puk_enc", puk.encode("ascii"), pin.AAD_PUK, 0x03),
        ("pin_token_enc", pin_token, pin.AAD_PIN_TOKEN, 0x04),
    ):
        nonce = bytes([nonce_byte]) * pin.NONCE_SIZE
        ciphertexts.append(
            {
                "name": name,
                "plaintext": plaintext.hex(),
                "aad": aad.decode("ascii"),
                "nonce": nonce.hex(),
                "ciphertext": pin.encrypt(shared, plaintext, aad, nonce).hex(),
            }
        )
    return {
        "description": "PIN protocol (docs/protocol.md §6) with fixed private keys (P-256 "
        "scalars) and fixed AES-GCM nonces: the derived key, every ciphertext and a pin_auth.",
        "host_private_key": f"{HOST_KEY:064x}",
        "host_public_key": host_public.hex(),
        "dongle_private_key": f"{DONGLE_KEY:064x}",
        "dongle_public_key": dongle_public.hex(),
        "shared_key": shared.hex(),
        "pin": the_pin,
        "pin_hash": pin.pin_hash(the_pin).hex(),
        "new_pin": new_pin,
        "puk": puk,
        "pin_token": pin_token.hex(),
        "ciphertexts": ciphertexts,
        "pin_auth_fields": to_json(fields),
        "pin_auth_message": message.hex(),
        "pin_auth": pin.pin_auth(pin_token, message).hex(),
        "key_agreement_binding": key_agreement_binding(dongle_public),
    }


def key_agreement_binding(key_agreement: bytes) -> dict[str, Any]:
    """GET_KEY_AGREEMENT's signature (§6.1): the payment key over the key-agreement key and the
    host's nonce."""
    payment_key = private_key(PAYMENT_KEY)
    fields = {
        "alg": -7,
        "dongle_id": "TVP0000A1B2C3",
        "key_rev": 1,
        "key_agreement": key_agreement,
        "nonce": bytes(range(0xC0, 0xE0)),
    }
    data = signing.KeyAgreementBinding.from_dict(fields).signed_bytes()
    return {
        "fields": to_json(fields),
        "signed_bytes": data.hex(),
        "payment_public_key": signing.public_key_bytes(payment_key.public_key()).hex(),
        "signature": _sign_deterministic(payment_key, data).hex(),
    }


GENERATORS = {
    "frames.json": frames,
    "messages.json": messages,
    "signed_payloads.json": signed_payloads,
    "pin_protocol.json": pin_protocol,
}


def render(name: str) -> str:
    """The exact text of one vector file."""
    return json.dumps(GENERATORS[name](), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    for name in GENERATORS:
        (VECTOR_DIR / name).write_text(render(name), encoding="utf-8")
        print(f"wrote {VECTOR_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
