"""Cutting frames into 64-byte bulk packets, and recognising the dongle by its udev PRODUCT."""

from __future__ import annotations

import pytest

from protocol import usb


@pytest.mark.parametrize(
    ("length", "sizes"),
    [
        (1, [1]),
        (14, [14]),
        (63, [63]),
        (64, [64, 0]),
        (65, [64, 1]),
        (128, [64, 64, 0]),
        (8206, [64] * 128 + [14]),
    ],
)
def test_packet_sizes_end_with_a_short_or_zero_length_packet(length: int, sizes: list[int]) -> None:
    assert [len(p) for p in usb.packets(bytes(length))] == sizes


def test_packets_join_back_to_the_frame() -> None:
    frame = bytes(i % 256 for i in range(1000))
    assert b"".join(usb.packets(frame)) == frame


def test_empty_frame_is_one_zero_length_packet() -> None:
    assert list(usb.packets(b"")) == [b""]


def test_packet_size_is_configurable() -> None:
    assert [len(p) for p in usb.packets(bytes(16), packet_size=8)] == [8, 8, 0]


def test_product_property_is_lowercase_hex_without_padding() -> None:
    assert usb.product_property() == "1209/1/100"


@pytest.mark.parametrize("product", ["1209/1/100", "1209/1/0", "1209/0001/0200", "1209/1/ff"])
def test_matches_our_vid_pid_whatever_the_release(product: str) -> None:
    assert usb.matches_product(product)


@pytest.mark.parametrize(
    "product", ["1209/2/100", "1050/1/100", "1209/1", "1209/1/100/1", "", "zz/1/100", "1209//100"]
)
def test_rejects_other_devices_and_malformed_values(product: str) -> None:
    assert not usb.matches_product(product)


def test_matches_a_configured_vid_pid() -> None:
    assert usb.matches_product("abcd/12/1", vid=0xABCD, pid=0x12)
