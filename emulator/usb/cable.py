"""The host end of the virtual cable: a pyusb backend, a hotplug source and a control client for
dongles served by ``tvpay-emulator dongle --listen HOST:PORT`` in another process.

Entry points named in configuration (see ``dongle.usblink.load_backend``):

- ``emulator.usb.cable:backend?HOST:PORT`` — the pyusb backend;
- ``emulator.usb.cable:hotplug`` with arg ``HOST:PORT`` — udev-like plug/unplug events.

Each opened device gets its own TCP connection (a blocking read on one dongle never holds up
another); a lost connection looks like an unplugged device.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from emulator.usb.backend import DeviceInfo, Port, VirtualBackend
from emulator.usb.errors import no_device, usb_error
from emulator.usb.wire import (
    IN_NONE,
    IN_READY,
    XFER_READ,
    XFER_WRITE,
    Channel,
    Received,
    TransferReply,
    WireError,
    connect,
    encode_request,
    parse_address,
)

log = logging.getLogger("tvpay.emulator.cable")


class CableError(RuntimeError):
    """The cable server refused a request, or cannot be reached; the message says which."""


class _Client:
    """A request/answer connection to the cable server."""

    def __init__(self, address: tuple[str, int]) -> None:
        try:
            self._channel = Channel(connect(address))
        except OSError as exc:
            raise CableError(
                f"cannot reach the virtual cable at {address[0]}:{address[1]} ({exc.strerror}); "
                "is 'tvpay-emulator dongle --listen' running?"
            ) from None
        self._lock = threading.Lock()

    def exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._channel.send(message)
            return self._channel.receive_map()

    def transfer(self, message: bytes) -> Received:
        """Send an ``encode_request`` message; the server's answer."""
        with self._lock:
            self._channel.send_framed(message)
            return self._channel.receive()

    def request(self, op: str, **args: Any) -> Any:
        return _result(self.exchange({"op": op, **args}))

    def close(self) -> None:
        self._channel.close()


def _result(reply: dict[str, Any]) -> Any:
    if "usb_error" in reply:
        raise usb_error(int(reply["usb_error"]))
    if "error" in reply:
        raise CableError(str(reply["error"]))
    return reply.get("ok")


DEFAULT_READ_SIZE = 8256  # what hosts read with (docs/protocol.md §1), until they show otherwise


class _RemotePort:
    def __init__(self, client: _Client) -> None:
        self._client = client
        self._read_size = DEFAULT_READ_SIZE
        self._prefetched: bytes | None = None
        self._prefetch_error: int | None = None

    def _call(self, op: str, **args: Any) -> Any:
        try:
            reply = self._client.exchange({"op": op, **args})
        except (WireError, OSError):
            raise no_device() from None  # the dongle process went away: as good as unplugged
        # Outside the try: pyusb's USBError is an OSError, and a timeout or a stall the dongle
        # reported must stay what it is, not turn into "unplugged".
        return _result(reply)

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes | int
    ) -> bytes | int:
        return self._call(
            "control", type=request_type, request=request, value=value, index=index, data=data
        )

    def _transfer(self, message: bytes) -> TransferReply:
        try:
            reply = self._client.transfer(message)
        except (WireError, OSError):
            raise no_device() from None  # the dongle process went away: as good as unplugged
        if isinstance(reply, dict):
            _result(reply)  # raises the error the server explained
            raise no_device()
        if not isinstance(reply, TransferReply):
            raise no_device()  # a server that answers with a request is no dongle
        if reply.status:
            raise usb_error(reply.status)
        return reply

    def write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        prefetch = self._read_size if self._prefetched is None else 0
        reply = self._transfer(encode_request(XFER_WRITE, endpoint, timeout_ms, prefetch, data))
        if reply.in_status == IN_READY:
            self._prefetched = reply.data
        elif reply.in_status != IN_NONE:
            self._prefetch_error = reply.in_status
        return reply.count

    def read(self, endpoint: int, size: int, timeout_ms: int) -> bytes:
        self._read_size = size
        if self._prefetch_error is not None:
            code, self._prefetch_error = self._prefetch_error, None
            raise usb_error(code)
        if self._prefetched is not None:
            data, rest = self._prefetched[:size], self._prefetched[size:]
            self._prefetched = rest or None
            return data
        return self._transfer(encode_request(XFER_READ, endpoint, timeout_ms, size, b"")).data

    def set_configuration(self, value: int) -> None:
        self._call("set_configuration", value=value)

    def clear_halt(self, endpoint: int) -> None:
        self._call("clear_halt", ep=endpoint)

    def reset(self) -> None:
        self._prefetched = self._prefetch_error = None
        self._call("reset")

    def close(self) -> None:
        self._client.close()


class CableSource:
    """The plugged dongles behind one cable address."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    def devices(self) -> list[DeviceInfo]:
        try:
            client = _Client(self.address)
        except CableError:
            return []  # no cable, no devices: what a USB bus with nothing plugged in shows
        try:
            found = client.request("devices")
        except (WireError, OSError):
            return []
        finally:
            client.close()
        return [DeviceInfo(d["serial"], d["bus"], d["address"], d["port"]) for d in found]

    def open(self, info: DeviceInfo) -> Port:
        try:
            client = _Client(self.address)
        except CableError:
            raise no_device() from None
        port = _RemotePort(client)
        try:
            port._call("open", serial=info.serial, address=info.address)
        except BaseException:
            client.close()
            raise
        return port


def backend(arg: str) -> VirtualBackend:
    """pyusb backend for the dongles behind the cable at ``arg`` ("HOST:PORT")."""
    return VirtualBackend(CableSource(parse_address(arg)))


RECONNECT_FIRST = 0.05  # seconds before the first reconnection attempt
RECONNECT_MAX = 2.0  # the backoff doubles up to this


class _HotplugStream:
    """Hotplug events from one cable, surviving the loss of the cable process.

    The stream remembers what it reported. When the connection drops it reports "remove" for
    every dongle it had reported (a dead cable process has, in effect, unplugged them all), then
    reconnects with a bounded exponential backoff until stopped; the server's replay on connect
    then reports "add" for the dongles present again."""

    def __init__(
        self, address: tuple[str, int], callback: Callable[[str, Mapping[str, str]], None]
    ) -> None:
        self._address = address
        self._callback = callback
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._client: _Client | None = None
        self._reported: dict[str, dict[str, str]] = {}  # DEVNAME -> its "add" properties
        self._pending: list[dict[str, Any]] = []  # events received while subscribing
        self._subscribe(_Client(address))  # a wrong address fails here, loudly
        self._thread = threading.Thread(target=self._run, name="cable-hotplug", daemon=True)
        self._thread.start()

    def _subscribe(self, client: _Client) -> None:
        """Subscribe on ``client``; returns once the server has acknowledged, so no change made
        after that can be missed. Replayed events are delivered later, by the thread."""
        with self._lock:
            if self._stopped.is_set():
                client.close()
                return
            self._client = client  # from here on stop() can interrupt the handshake
        try:
            client._channel.send({"op": "subscribe"})
            while "ok" not in (message := client._channel.receive_map()):
                if "error" in message:
                    raise CableError(str(message["error"]))
                self._pending.append(message)
        except BaseException:
            with self._lock:
                self._client = None
            client.close()
            raise

    def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._stopped.is_set():
            with self._lock:
                client = self._client
            if client is not None:
                self._pump(client)
                with self._lock:
                    self._client = None
                if self._stopped.is_set():
                    return  # nothing is reported after stop()
                self._report_all_removed()
                delay = RECONNECT_FIRST
            if self._stopped.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_MAX)
            try:
                self._subscribe(_Client(self._address))
            except (CableError, WireError, OSError):
                log.debug("event=hotplug_reconnect_failed retry_in=%.2f", delay)
            else:
                log.info("event=hotplug_reconnected address=%s:%d", *self._address)

    def _pump(self, client: _Client) -> None:
        try:
            pending, self._pending = self._pending, []
            for message in pending:
                self._handle(message)
            while True:
                self._handle(client._channel.receive_map())
        except (WireError, OSError) as exc:
            client.close()
            if not self._stopped.is_set():
                log.warning("event=hotplug_lost address=%s:%d reason=%s", *self._address, exc)

    def _handle(self, message: dict[str, Any]) -> None:
        event, props = message.get("event"), message.get("properties")
        if isinstance(event, str) and isinstance(props, dict):
            self._deliver(event, props)

    def _deliver(self, action: str, props: dict[str, str]) -> None:
        name = str(props.get("DEVNAME", ""))
        if action == "add":
            self._reported[name] = props
        elif action == "remove":
            self._reported.pop(name, None)
        self._callback(action, props)

    def _report_all_removed(self) -> None:
        reported, self._reported = self._reported, {}
        for props in reported.values():
            removed = {k: v for k, v in props.items() if k != "ID_SERIAL_SHORT"}
            removed["ACTION"] = "remove"  # as udev reports a remove: no serial any more
            self._callback("remove", removed)

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def hotplug(arg: str, callback: Callable[[str, Mapping[str, str]], None]) -> Callable[[], None]:
    """Call ``callback(action, properties)`` for each plug ("add") and unplug ("remove") behind
    the cable at ``arg``, first an "add" for each dongle already plugged. If the cable process
    goes away, every reported dongle gets a "remove", and the stream reconnects (backoff up to
    ``RECONNECT_MAX`` seconds) until ``stop`` is called. Returns ``stop``.

    Raises ``CableError`` if the cable cannot be reached at the start."""
    return _HotplugStream(parse_address(arg), callback).stop


class CableControl:
    """Drive the virtual cable: list dongles, plug, unplug, inject faults, add dongles, and move
    purchase cards in and out of the dongles' card slots."""

    def __init__(self, address: str) -> None:
        self.address = parse_address(address)
        self._client: _Client | None = None

    def _request(self, op: str, **args: Any) -> Any:
        if self._client is None:
            self._client = _Client(self.address)
        try:
            return self._client.request(op, **args)
        except (WireError, OSError) as exc:
            self.close()
            raise CableError(f"lost the virtual cable: {exc}") from None

    def list(self) -> list[dict[str, Any]]:
        """Every dongle: serial, bus, address, port, plugged, active faults."""
        return self._request("list")

    def plug(self, serial: str) -> None:
        self._request("plug", serial=serial)

    def unplug(self, serial: str) -> None:
        self._request("unplug", serial=serial)

    def fault(self, serial: str, kind: str, **params: Any) -> None:
        """Arm a fault (see ``emulator.usb.faults``), e.g. ``fault(s, "drop", direction="in")``."""
        self._request("fault", serial=serial, kind=kind, params=params)

    def clear_faults(self, serial: str) -> None:
        self._request("clear_faults", serial=serial)

    def add_dongle(
        self, count: int = 1, *, seed: int | None = None, plugged: bool = True
    ) -> list[str]:
        """Manufacture ``count`` factory-fresh dongles on the cable; their serials."""
        return self._request("add_dongle", count=count, seed=seed, plugged=plugged)

    def card_insert(self, serial: str, path: Path) -> bytes:
        """Put the purchase card kept in ``path`` into the dongle's card slot; its ATR."""
        return self._request("card_insert", serial=serial, path=str(Path(path).resolve()))

    def card_remove(self, serial: str) -> str | None:
        """Take the card out of the dongle's slot; the file it is kept in (None: slot empty)."""
        return self._request("card_remove", serial=serial)

    def card_status(self, serial: str) -> dict[str, Any]:
        """The slot: present, card (its file), atr (hex), slot_events, removal (armed fault)."""
        return self._request("card_status", serial=serial)

    def card_fault(self, serial: str, moment: str, apdu: int) -> None:
        """Pull the card out at the ``apdu``-th APDU from now: ``moment`` "before" it reaches
        the card, "during" (it runs, its answer is lost) or "after" its answer."""
        self._request("card_fault", serial=serial, moment=moment, apdu=apdu)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def __enter__(self) -> CableControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
