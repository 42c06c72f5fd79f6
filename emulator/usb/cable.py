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
import threading
from collections.abc import Callable, Mapping
from typing import Any

from emulator.usb.backend import DeviceInfo, Port, VirtualBackend
from emulator.usb.errors import no_device, usb_error
from emulator.usb.wire import Channel, WireError, connect, parse_address


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
            return self._client.request(op, **args)
        except (WireError, OSError):
            raise no_device() from None  # the dongle process went away: as good as unplugged

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes | int
    ) -> bytes | int:
        return self._call(
            "control", type=request_type, request=request, value=value, index=index, data=data
        )

    def write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        prefetch = self._read_size if self._prefetched is None else None
        try:
            reply = self._client.exchange(
                {
                    "op": "write",
                    "ep": endpoint,
                    "data": data,
                    "timeout": timeout_ms,
                    "prefetch": prefetch,
                }
            )
        except (WireError, OSError):
            raise no_device() from None
        if "in" in reply:
            self._prefetched = reply["in"]
        elif "in_error" in reply:
            self._prefetch_error = int(reply["in_error"])
        return _result(reply)

    def read(self, endpoint: int, size: int, timeout_ms: int) -> bytes:
        self._read_size = size
        if self._prefetch_error is not None:
            code, self._prefetch_error = self._prefetch_error, None
            raise usb_error(code)
        if self._prefetched is not None:
            data, rest = self._prefetched[:size], self._prefetched[size:]
            self._prefetched = rest or None
            return data
        return self._call("read", ep=endpoint, size=size, timeout=timeout_ms)

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


def hotplug(arg: str, callback: Callable[[str, Mapping[str, str]], None]) -> Callable[[], None]:
    """Call ``callback(action, properties)`` for each plug ("add") and unplug ("remove") behind
    the cable at ``arg``, first an "add" for each dongle already plugged. Returns ``stop``."""
    client = _Client(parse_address(arg))
    channel = client._channel
    channel.send({"op": "subscribe"})
    stopped = threading.Event()

    def pump() -> None:
        try:
            while True:
                message = channel.receive()
                event, props = message.get("event"), message.get("properties")
                if isinstance(event, str) and isinstance(props, dict):
                    callback(event, props)
        except (WireError, OSError):
            return  # stopped, or the cable went away

    thread = threading.Thread(target=pump, name="cable-hotplug", daemon=True)
    thread.start()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        client.close()
        if thread is not threading.current_thread():
            thread.join(timeout=5)

    return stop


class CableControl:
    """Drive the virtual cable: list dongles, plug, unplug, inject faults, add dongles."""

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

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def __enter__(self) -> CableControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
