"""The dongle end of the virtual cable: serves a ``VirtualBus`` over TCP.

Each connection is either a device handle (after ``open``: bulk and control transfers on one
dongle), a control client (list, plug, unplug, faults, new dongles, purchase cards in the dongles'
card slots) or, after ``subscribe``, a stream of hotplug events. USB errors travel as libusb
error codes and are re-raised as the same pyusb exceptions on the host side.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from usb.core import USBError

from emulator.card import CardImageError, VirtualPurchaseCard
from emulator.usb.backend import DeviceInfo, LocalPort, LocalSource, info_of
from emulator.usb.bus import BusError, VirtualBus
from emulator.usb.card_slot import CardRemoval, RemovalMoment, SlotError
from emulator.usb.faults import Fault, FaultError
from emulator.usb.wire import (
    IN_NONE,
    IN_READY,
    XFER_READ,
    Channel,
    TransferRequest,
    WireError,
    encode_reply,
)
from protocol.usb import EP_IN

log = logging.getLogger("tvpay.emulator.cable")
_Handler = Callable[["_Session", dict[str, Any]], Any]


class RequestError(ValueError):
    """A cable request is malformed; the message goes back to the client."""


def _arg(message: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = message.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RequestError(f"'{name}' is missing or of the wrong type")
    return value


class CableServer:
    def __init__(self, bus: VirtualBus, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bus = bus
        self._source = LocalSource(bus)
        self._listener = socket.create_server((host, port))
        bound_host, bound_port = self._listener.getsockname()[:2]
        # Kept, not asked of the socket: the address is still named after the socket is closed.
        self.address = f"{bound_host}:{bound_port}"
        self._closing = threading.Event()
        self._cards_lock = threading.Lock()
        # serial -> the card in its slot and the file it is kept in
        self._cards: dict[str, tuple[Path, VirtualPurchaseCard]] = {}

    def start(self) -> CableServer:
        thread = threading.Thread(target=self.serve_forever, name="cable-accept", daemon=True)
        thread.start()
        return self

    def serve_forever(self) -> None:
        while not self._closing.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return  # closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = _Session(self, Channel(sock))
            threading.Thread(target=session.run, name=f"cable-{peer[1]}", daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()

    def open_port(self, serial: str, address: int) -> LocalPort:
        dongle = self.bus.get(serial)
        desc = dongle.descriptor
        return LocalPort(
            self._source.checked(DeviceInfo(serial, desc.bus, address, desc.port_number)), address
        )

    # -- purchase cards: a card file is "out" or in one dongle's slot -------------------------

    def _card_file(self, serial: str) -> Path | None:
        """The file of the card in the dongle's slot (None when the slot is empty: a removal
        fault may have taken the card out since it was inserted). Call with _cards_lock held."""
        entry = self._cards.get(serial)
        if entry is None or self.bus.get(serial).card_slot.card is not entry[1]:
            self._cards.pop(serial, None)
            return None
        return entry[0]

    def insert_card(self, serial: str, path: Path) -> bytes:
        """Put the card kept in ``path`` into the dongle's slot; its ATR."""
        slot = self.bus.get(serial).card_slot
        with self._cards_lock:
            for holder in list(self._cards):
                if self._card_file(holder) == path:
                    raise SlotError(
                        f"the card {path} is in dongle {holder}'s slot: remove it first"
                    )
            card = VirtualPurchaseCard.load(path)
            atr = slot.insert(card)
            self._cards[serial] = (path, card)
        log.info("event=card_inserted serial=%s card=%s", serial, path)
        return atr

    def remove_card(self, serial: str) -> str | None:
        """Take the card out of the dongle's slot; the file it is kept in, or None if empty."""
        slot = self.bus.get(serial).card_slot
        with self._cards_lock:
            path = self._card_file(serial)
            slot.remove()
            self._cards.pop(serial, None)
        log.info("event=card_removed serial=%s card=%s", serial, path or "-")
        return str(path) if path else None

    def card_status(self, serial: str) -> dict[str, Any]:
        state = self.bus.get(serial).card_slot.state()
        with self._cards_lock:
            path = self._card_file(serial)
        removal = state.removal
        return {
            "serial": serial,
            "present": state.present,
            "card": str(path) if path else None,
            "atr": state.atr.hex(),
            "slot_events": state.slot_events,
            "removal": {"moment": removal.moment.value, "apdu": removal.apdu} if removal else None,
        }


_STREAMING = object()  # the handler has sent its own replies


class _Session:
    def __init__(self, server: CableServer, channel: Channel) -> None:
        self.server = server
        self.channel = channel
        self.port: LocalPort | None = None
        self.on_close: list[Callable[[], None]] = []
        self._send_lock = threading.Lock()

    def run(self) -> None:
        try:
            while True:
                message = self.channel.receive()
                if isinstance(message, TransferRequest):
                    self._transfer(message)
                    continue
                if not isinstance(message, dict):
                    raise WireError("a cable client sent a transfer reply")
                op = message.get("op")
                handler = _HANDLERS.get(op) if isinstance(op, str) else None
                if handler is None:
                    self._reply({"error": f"unknown cable operation {op!r}"})
                    continue
                try:
                    result = handler(self, message)
                except USBError as exc:
                    self._reply({"usb_error": exc.backend_error_code})
                except (RequestError, BusError, FaultError, SlotError, CardImageError) as exc:
                    self._reply({"error": str(exc)})
                else:
                    if result is not _STREAMING:
                        self._reply({"ok": result})
        except (WireError, OSError) as exc:
            log.debug("event=cable_disconnect reason=%s", exc)
        finally:
            for callback in self.on_close:
                callback()
            self.channel.close()

    def _reply(self, message: Mapping[str, Any]) -> None:
        with self._send_lock:
            self.channel.send(dict(message))

    def _transfer(self, request: TransferRequest) -> None:
        try:
            reply = _bulk(self._port(), request)
        except USBError as exc:
            reply = encode_reply(exc.backend_error_code, 0, IN_NONE, b"")
        except RequestError as exc:
            self._reply({"error": str(exc)})
            return
        with self._send_lock:
            self.channel.send_framed(reply)

    def _port(self) -> LocalPort:
        if self.port is None:
            raise RequestError("open a device on this connection first")
        return self.port


def _open(s: _Session, m: dict[str, Any]) -> None:
    s.port = s.server.open_port(_arg(m, "serial", str), _arg(m, "address", int))


def _bulk(port: LocalPort, request: TransferRequest) -> bytes:
    """One bulk transfer; its encoded reply. A write's reply also carries the IN transfer it
    produced, if one is ready (errors included): the host end hands it to its next read, as if
    that read had just happened, so a command costs one round trip."""
    if not 0 <= request.size <= 1 << 16:
        raise RequestError("transfer size must be within 0..65536")
    if request.kind == XFER_READ:
        data = port.read(request.endpoint, request.size, request.timeout_ms)
        return encode_reply(0, 0, IN_READY, data)
    written = port.write(request.endpoint, request.data, request.timeout_ms)
    if request.size == 0:
        return encode_reply(0, written, IN_NONE, b"")
    try:
        data = port.poll(EP_IN, request.size)
    except USBError as exc:
        return encode_reply(0, written, exc.backend_error_code, b"")
    if data is None:
        return encode_reply(0, written, IN_NONE, b"")
    return encode_reply(0, written, IN_READY, data)


def _control(s: _Session, m: dict[str, Any]) -> bytes | int:
    data = m.get("data")
    if not isinstance(data, bytes | int) or isinstance(data, bool):
        raise RequestError("'data' must be bytes (OUT) or a length (IN)")
    return s._port().control(
        _arg(m, "type", int),
        _arg(m, "request", int),
        _arg(m, "value", int),
        _arg(m, "index", int),
        data,
    )


def _list(s: _Session, m: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "serial": d.serial,
            "bus": d.descriptor.bus,
            "address": d.descriptor.address,
            "port": d.descriptor.port_number,
            "plugged": d.plugged,
            "faults": [f.describe() for f in d.faults.active()],
        }
        for d in s.server.bus.dongles()
    ]


def _fault(s: _Session, m: dict[str, Any]) -> None:
    params = m.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError("'params' must be a map")
    fault = Fault.parse(_arg(m, "kind", str), params)
    s.server.bus.get(_arg(m, "serial", str)).add_fault(fault)
    log.info("event=fault serial=%s kind=%s", m["serial"], fault.kind)


def _add_dongle(s: _Session, m: dict[str, Any]) -> list[str]:
    count = m.get("count", 1)
    seed = m.get("seed")
    if not isinstance(count, int) or not 1 <= count <= 64:
        raise RequestError("'count' must be within 1..64")
    if seed is not None and not isinstance(seed, int):
        raise RequestError("'seed' must be an integer")
    return s.server.bus.manufacture(count, seed, plugged=bool(m.get("plugged", True)))


def _subscribe(s: _Session, m: dict[str, Any]) -> object:
    def forward(action: str, props: Mapping[str, str]) -> None:
        # A gone subscriber is dropped when its session ends; until then sends just fail.
        with contextlib.suppress(OSError):
            s._reply({"event": action, "properties": dict(props)})

    # Subscribed (and the plugged dongles replayed) before the acknowledgement: a client that
    # has its "ok" cannot miss a plug or unplug made after it.
    s.on_close.append(s.server.bus.subscribe(forward))
    s._reply({"ok": None})
    return _STREAMING


def _info(dongle_info: DeviceInfo) -> dict[str, Any]:
    return {
        "serial": dongle_info.serial,
        "bus": dongle_info.bus,
        "address": dongle_info.address,
        "port": dongle_info.port_number,
    }


def _card_path(m: dict[str, Any]) -> Path:
    path = Path(_arg(m, "path", str))
    if not path.is_absolute():
        raise RequestError("'path' must be an absolute path: the cable runs in another directory")
    return path


def _card_fault(s: _Session, m: dict[str, Any]) -> None:
    moment = _arg(m, "moment", str)
    try:
        removal = CardRemoval(RemovalMoment(moment), _arg(m, "apdu", int))
    except ValueError:
        moments = ", ".join(k.value for k in RemovalMoment)
        raise RequestError(f"unknown removal moment {moment!r}; use one of {moments}") from None
    s.server.bus.get(_arg(m, "serial", str)).card_slot.arm_removal(removal)


_HANDLERS: dict[str, _Handler] = {
    "open": _open,
    "control": _control,
    "set_configuration": lambda s, m: s._port().set_configuration(_arg(m, "value", int)),
    "clear_halt": lambda s, m: s._port().clear_halt(_arg(m, "ep", int)),
    "reset": lambda s, m: s._port().reset(),
    "devices": lambda s, m: [_info(info_of(d)) for d in s.server.bus.plugged()],
    "list": _list,
    "plug": lambda s, m: s.server.bus.plug(_arg(m, "serial", str)) and None,
    "unplug": lambda s, m: s.server.bus.unplug(_arg(m, "serial", str)) and None,
    "fault": _fault,
    "clear_faults": lambda s, m: s.server.bus.get(_arg(m, "serial", str)).clear_faults(),
    "add_dongle": _add_dongle,
    "subscribe": _subscribe,
    "card_insert": lambda s, m: s.server.insert_card(_arg(m, "serial", str), _card_path(m)),
    "card_remove": lambda s, m: s.server.remove_card(_arg(m, "serial", str)),
    "card_status": lambda s, m: s.server.card_status(_arg(m, "serial", str)),
    "card_fault": _card_fault,
}
