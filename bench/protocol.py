"""Host-side framing cost of an echo, TVPay's protocol against python-fido2's CTAPHID.

One round trip is the framing work of a PING echo on both sides of the cable, with no I/O:
the request is encoded into 64-byte USB packets and decoded back from those packets, then the
same for the response. For TVPay that is encode_message + usb.packets + FrameDecoder +
decode_message (canonical-CBOR check included); for CTAPHID it is the packet building and
reassembly loop of ``fido2.hid.CtapHidDevice._do_call``, replicated with fido2's own constants and
its per-packet traffic logging call (which formats every packet as hex even when the level is
off, as the library does); ``fido2_bare_roundtrips_per_s`` is the same loop without that call.

Prints one JSON object per payload size. ``tvpay_MB_per_s`` counts the echoed data bytes of
both directions; ``usb_fullspeed_multiple`` compares that with 1.2 MB/s, what a full-speed bulk
endpoint carries in practice.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

# This script is bench/protocol.py: run as a script, its own folder would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from fido2.hid import CTAPHID, TYPE_INIT  # noqa: E402
from fido2.hid import logger as fido2_logger  # noqa: E402
from fido2.utils import LOG_LEVEL_TRAFFIC  # noqa: E402

from protocol.frame import Frame, FrameDecoder  # noqa: E402
from protocol.messages import (  # noqa: E402
    Command,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)
from protocol.usb import PACKET_SIZE, packets  # noqa: E402

SIZES = (16, 256, 1024, 4096)
USB_FULL_SPEED_MB_PER_S = 1.2
RUN_SECONDS = 0.3
REPEATS = 5
CHANNEL_ID = 0x01020304


def tvpay_transfer(msg: Request | Response, seq: int) -> Request | Response:
    """Encode ``msg`` into USB packets and decode it back from them, as host and dongle do."""
    decoder = FrameDecoder()
    out: list = []
    for packet in packets(encode_message(msg, seq)):
        out += decoder.feed(packet)
    (frame,) = out
    if not isinstance(frame, Frame):
        raise RuntimeError(f"frame rejected: {frame}")
    return decode_message(frame)  # type: ignore[return-value]


def tvpay_roundtrip(data: bytes) -> bytes:
    request = tvpay_transfer(Request(Command.PING, 0x0A0B0C0D, {"data": data}), 1)
    response = tvpay_transfer(Response(Status.OK, request.request_id, request.params), 1)
    return response.body["data"]


def fido2_packets(
    channel_id: int, cmd: int, data: bytes, packet_size: int, traffic: bool
) -> list[bytes]:
    """The packets ``CtapHidDevice._do_call`` writes for one message."""
    written = []
    remaining = data
    seq = 0
    header = struct.pack(">IBH", channel_id, TYPE_INIT | cmd, len(remaining))
    while remaining or seq == 0:
        size = min(len(remaining), packet_size - len(header))
        body, remaining = remaining[:size], remaining[size:]
        packet = header + body
        if traffic:
            fido2_logger.log(LOG_LEVEL_TRAFFIC, "SEND: %s", packet.hex())
        written.append(packet.ljust(packet_size, b"\0"))
        header = struct.pack(">IB", channel_id, 0x7F & seq)
        seq += 1
    return written


def fido2_reassemble(channel_id: int, cmd: int, received: list[bytes], traffic: bool) -> bytes:
    """The reassembly loop of ``CtapHidDevice._do_call`` over already-read packets."""
    reads = iter(received)
    seq = 0
    r_len = 0
    response = b""
    while True:
        recv = next(reads)
        if traffic:
            fido2_logger.log(LOG_LEVEL_TRAFFIC, "RECV: %s", recv.hex())
        r_channel = struct.unpack_from(">I", recv)[0]
        recv = recv[4:]
        if r_channel != channel_id:
            raise RuntimeError("Wrong channel")
        if not response:  # Initialization packet
            r_cmd, r_len = struct.unpack_from(">BH", recv)
            recv = recv[3:]
            if r_cmd != TYPE_INIT | cmd:
                raise RuntimeError("unexpected command")
        else:  # Continuation packet
            r_seq = struct.unpack_from(">B", recv)[0]
            recv = recv[1:]
            if r_seq != seq & 0x7F:
                raise RuntimeError("Wrong sequence number")
            seq += 1
        response += recv
        if len(response) >= r_len:
            break
    return response[:r_len]


def fido2_echo(data: bytes, traffic: bool) -> bytes:
    ping = CTAPHID.PING
    request = fido2_reassemble(
        CHANNEL_ID, ping, fido2_packets(CHANNEL_ID, ping, data, PACKET_SIZE, traffic), traffic
    )
    return fido2_reassemble(
        CHANNEL_ID, ping, fido2_packets(CHANNEL_ID, ping, request, PACKET_SIZE, traffic), traffic
    )


def fido2_roundtrip(data: bytes) -> bytes:
    return fido2_echo(data, traffic=True)


def fido2_bare_roundtrip(data: bytes) -> bytes:
    return fido2_echo(data, traffic=False)


def rate(roundtrip: Callable[[bytes], bytes], data: bytes) -> float:
    """Best round trips per second over a few timed runs (the machine is shared)."""
    if roundtrip(data) != data:
        raise RuntimeError(f"{roundtrip.__name__} did not echo the data")
    best = 0.0
    for _ in range(REPEATS):
        count = 0
        start = time.perf_counter()
        deadline = start + RUN_SECONDS
        while (now := time.perf_counter()) < deadline:
            for _ in range(50):
                roundtrip(data)
            count += 50
        best = max(best, count / (now - start))
    return best


def main() -> int:
    for size in SIZES:
        data = bytes(i % 251 for i in range(size))
        tvpay = rate(tvpay_roundtrip, data)
        fido2 = rate(fido2_roundtrip, data)
        fido2_bare = rate(fido2_bare_roundtrip, data)
        mb_per_s = tvpay * 2 * size / 1e6
        print(
            json.dumps(
                {
                    "bench": "protocol_framing",
                    "payload_bytes": size,
                    "tvpay_roundtrips_per_s": round(tvpay),
                    "fido2_roundtrips_per_s": round(fido2),
                    "ratio": round(tvpay / fido2, 2),
                    "fido2_bare_roundtrips_per_s": round(fido2_bare),
                    "ratio_bare": round(tvpay / fido2_bare, 2),
                    "tvpay_MB_per_s": round(mb_per_s, 2),
                    "usb_fullspeed_multiple": round(mb_per_s / USB_FULL_SPEED_MB_PER_S, 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
