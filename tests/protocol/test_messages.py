"""The canonical-form check of decode_map: key order is length first, then bytewise."""

from __future__ import annotations

import cbor2
import pytest

from protocol.errors import MessageError
from protocol.messages import canonical_cbor, decode_map


def test_shorter_key_before_longer_is_canonical() -> None:
    data = bytes.fromhex("a261620162616102")  # {"b": 1, "aa": 2}
    assert data == canonical_cbor({"aa": 2, "b": 1})
    assert decode_map(data) == {"b": 1, "aa": 2}


def test_lexicographic_order_that_ignores_length_is_rejected() -> None:
    data = cbor2.dumps({"aa": 2, "b": 1})  # insertion order: "aa" before "b"
    with pytest.raises(MessageError, match="canonical"):
        decode_map(data)


def test_nested_map_out_of_order_is_rejected() -> None:
    data = cbor2.dumps({"m": [{"b": 1, "a": 2}]})
    with pytest.raises(MessageError, match="canonical"):
        decode_map(data)


def test_non_shortest_length_is_rejected() -> None:
    data = bytes.fromhex("a1616158010f")  # {"a": h'0f'} with a one-byte length prefix
    with pytest.raises(MessageError, match="canonical"):
        decode_map(data)


def test_key_order_uses_utf8_bytes_not_code_points() -> None:
    # "é" (2 bytes in UTF-8) sorts after every one-byte key of the same character count.
    value = {"é": 1, "z": 2}
    assert decode_map(canonical_cbor(value)) == value
    with pytest.raises(MessageError):
        decode_map(cbor2.dumps({"é": 1, "z": 2}))
