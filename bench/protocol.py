"""Host-side framing cost of an echo, TVPay's link framing against python-fido2's CTAPHID.

No I/O anywhere: one round trip is the framing work of a PING echo on both sides of the cable.
The request is encoded into 64-byte USB packets and decoded back from those packets one packet at
a time, then the same for the response.

Headline, like for like (``tvpay_roundtrips_per_s`` against ``fido2_roundtrips_per_s`` and
``fido2_bare_roundtrips_per_s``), framing only on both sides:

- TVPay: ``encode_frame`` of a REQUEST frame whose payload is the 5-byte message header (command,
  request id) followed by the raw data, cut by ``protocol.usb.packets``, fed packet by packet to a
  ``FrameDecoder`` that lives across transfers (one per direction, as a receiver reading packet by
  packet keeps one per link; ``dongle.usblink`` instead feeds each whole transfer to a new decoder
  once libusb has joined its packets). The receiver checks the 5-byte header it expects, then the
  RESPONSE frame carries the status, the request id and the same data back. Header check, CRC-32
  and every decoder check run as in production.
- CTAPHID: the packet building and reassembly loops of ``fido2.hid.CtapHidDevice._do_call``,
  replicated with fido2's own constants (channel, command and sequence checks included), as
  shipped with its per-packet traffic logging call, which formats every packet as hex even when
  the level is off (``fido2_roundtrips_per_s``), and without that call
  (``fido2_bare_roundtrips_per_s``). CTAPHID has no checksum of its own.

Also reported, so nothing is hidden: ``tvpay_message_roundtrips_per_s``, the full message-layer
echo (``encode_message`` of a Request and a Response whose CBOR map holds the data, the same
packets and decoders, ``decode_message`` with its canonical-CBOR check). fido2 has no counterpart
here: its CTAP2 CBOR layer sits above ``_do_call`` and is not measured.

Prints one JSON object per payload size. Rates are the best of a few timed runs (the machine may
be shared). ``tvpay_MB_per_s`` counts the echoed data bytes of both directions of the framing
round trip; ``usb_fullspeed_multiple`` compares that with 1.2 MB/s, what a full-speed bulk
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

from protocol.frame import Frame, FrameDecoder, FrameType, encode_frame  # noqa: E402
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
REQUEST_ID = 0x0A0B0C0D
SEQ = 1
_HEAD = struct.Struct(">BI")
PING_HEAD = _HEAD.pack(Command.PING, REQUEST_ID)
OK_HEAD = _HEAD.pack(Status.OK, REQUEST_ID)
HEAD_SIZE = _HEAD.size

# One decoder per direction, kept across transfers.
_TO_DONGLE = FrameDecoder()
_TO_HOST = FrameDecoder()


def tvpay_transfer(frame: bytes, decoder: FrameDecoder) -> Frame:
    """Cut ``frame`` into USB packets and decode it back from them, packet by packet."""
    out: list = []
    for packet in packets(frame):
        out += decoder.feed(packet)
    (item,) = out
    if type(item) is not Frame:
        raise RuntimeError(f"frame rejected: {item}")
    return item


def tvpay_roundtrip(data: bytes) -> bytes:
    request = tvpay_transfer(encode_frame(FrameType.REQUEST, SEQ, PING_HEAD + data), _TO_DONGLE)
    payload = request.payload
    if not payload.startswith(PING_HEAD):
        raise RuntimeError("unexpected command or request id")
    response = tvpay_transfer(
        encode_frame(FrameType.RESPONSE, request.seq, OK_HEAD + payload[HEAD_SIZE:]), _TO_HOST
    )
    payload = response.payload
    if response.seq != SEQ or not payload.startswith(OK_HEAD):
        raise RuntimeError("unexpected status, request id or sequence number")
    return payload[HEAD_SIZE:]


def tvpay_message_transfer(
    msg: Request | Response, seq: int, decoder: FrameDecoder
) -> Request | Response:
    return decode_message(tvpay_transfer(encode_message(msg, seq), decoder))  # type: ignore[return-value]


def tvpay_message_roundtrip(data: bytes) -> bytes:
    request = tvpay_message_transfer(
        Request(Command.PING, REQUEST_ID, {"data": data}), SEQ, _TO_DONGLE
    )
    response = tvpay_message_transfer(
        Response(Status.OK, request.request_id, request.params), SEQ, _TO_HOST
    )
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


def _run(roundtrip: Callable[[bytes], bytes], data: bytes) -> float:
    """Round trips per second over one timed run."""
    count = 0
    start = time.perf_counter()
    deadline = start + RUN_SECONDS
    while (now := time.perf_counter()) < deadline:
        for _ in range(50):
            roundtrip(data)
        count += 50
    return count / (now - start)


def rates(roundtrips: list[Callable[[bytes], bytes]], data: bytes) -> list[float]:
    """Best round trips per second of each, over runs taken in turn so that a busy spell on a
    shared machine slows all of them, not just whichever happened to be running."""
    for roundtrip in roundtrips:
        if roundtrip(data) != data:
            raise RuntimeError(f"{roundtrip.__name__} did not echo the data")
    best = [0.0] * len(roundtrips)
    for _ in range(REPEATS):
        for i, roundtrip in enumerate(roundtrips):
            best[i] = max(best[i], _run(roundtrip, data))
    return best


def main() -> int:
    for size in SIZES:
        data = bytes(i % 251 for i in range(size))
        tvpay, fido2, fido2_bare, message = rates(
            [tvpay_roundtrip, fido2_roundtrip, fido2_bare_roundtrip, tvpay_message_roundtrip], data
        )
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
                    "tvpay_message_roundtrips_per_s": round(message),
                    "tvpay_MB_per_s": round(mb_per_s, 2),
                    "usb_fullspeed_multiple": round(mb_per_s / USB_FULL_SPEED_MB_PER_S, 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
