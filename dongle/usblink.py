"""The host side of the USB link to a payment dongle, over pyusb.

``DongleLink.call`` sends one command and returns its results, doing what docs/protocol.md §2 asks
of a host: sequence numbers and fresh request ids, retransmission of idempotent commands after a
timeout or a LINK_ERROR, stale answers discarded, KEEPALIVE restarting the timeout, CANCEL on
request. Only ``usb.core`` calls are used, so it drives a real dongle through libusb and the
emulator's virtual dongle through the backend the configuration names (``load_backend``).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import usb.core
import usb.util
from usb.backend import IBackend

from protocol.errors import FrameError, MessageError, dongle_error
from protocol.frame import MAX_FRAME, FrameDecoder, FrameFlag
from protocol.messages import (
    IDEMPOTENT_COMMANDS,
    Cancel,
    Command,
    Keepalive,
    KeepaliveStatus,
    Message,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)
from protocol.messages import (
    LinkError as LinkErrorMessage,
)
from protocol.usb import DEFAULT_PID, DEFAULT_VID, EP_IN, EP_OUT, PACKET_SIZE

READ_SIZE = -(-MAX_FRAME // PACKET_SIZE) * PACKET_SIZE  # 8256: a whole frame in one read
POLL_MS = 100  # reads are cut into slices this long so a cancel is noticed quickly
DEFAULT_RETRANSMITS = 3
LINK_ERROR_BUDGET = 4


class LinkError(Exception):
    """The USB link to the dongle failed."""


class DongleRemoved(LinkError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "the payment dongle was unplugged; plug it back in" + (f" ({detail})" if detail else "")
        )


class LinkTimeout(LinkError):
    """The dongle did not answer in time."""


class LinkCorrupted(LinkError):
    """Answers kept arriving damaged, or a non-repeatable command's answer was lost."""


def load_backend(spec: str | None) -> IBackend | None:
    """The pyusb backend named by ``spec`` ("module.path:factory?ARG"), or None for libusb's
    default. ``factory(ARG)`` (``factory()`` without "?ARG") must return an ``IBackend``."""
    if not spec:
        return None
    target, _, arg = spec.partition("?")
    module_name, _, factory_name = target.partition(":")
    if not module_name or not factory_name:
        raise ValueError(
            f"USB backend {spec!r} is not of the form 'module.path:factory?ARG', "
            "e.g. 'emulator.usb.cable:backend?127.0.0.1:7001'"
        )
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load USB backend {spec!r}: {exc}") from None
    backend = factory(arg) if arg else factory()
    if not isinstance(backend, IBackend):
        raise ValueError(f"USB backend factory {target!r} did not return a pyusb IBackend")
    return backend


def find_dongles(
    backend: IBackend | None = None, vid: int = DEFAULT_VID, pid: int = DEFAULT_PID
) -> list[usb.core.Device]:
    """Every payment dongle the backend sees (libusb's default when ``backend`` is None)."""
    try:
        found = usb.core.find(find_all=True, idVendor=vid, idProduct=pid, backend=backend)
    except usb.core.NoBackendError:
        raise LinkError("no USB backend: install libusb-1.0 or configure a backend") from None
    return list(found)


def _is_gone(exc: usb.core.USBError) -> bool:
    return exc.errno == errno.ENODEV or getattr(exc, "backend_error_code", None) == -4


class DongleLink:
    """One open dongle. ``call`` is thread-safe: callers are served one at a time."""

    def __init__(self, device: usb.core.Device, serial: str, retransmits: int) -> None:
        self.device = device
        self._serial = serial
        self._retransmits = retransmits
        self._lock = threading.Lock()
        self._seq = secrets.randbelow(256)  # a fresh start never collides with a remembered seq
        self._closed = False

    @classmethod
    def open(cls, device: usb.core.Device, *, retransmits: int = DEFAULT_RETRANSMITS) -> DongleLink:
        """Configure the device and claim interface 0."""
        try:
            device.set_configuration()
            usb.util.claim_interface(device, 0)
            serial = device.serial_number or ""
        except usb.core.USBError as exc:
            if _is_gone(exc):
                raise DongleRemoved(str(exc)) from None
            raise LinkError(
                f"cannot open the payment dongle: {exc}; check the udev rule gives access"
            ) from None
        return cls(device, serial, retransmits)

    @property
    def serial(self) -> str:
        return self._serial

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(usb.core.USBError):  # already gone: nothing left to release
            usb.util.release_interface(self.device, 0)
        usb.util.dispose_resources(self.device)

    def __enter__(self) -> DongleLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(
        self,
        command: Command,
        params: dict[str, Any] | None = None,
        *,
        timeout: float = 2.0,
        on_keepalive: Callable[[KeepaliveStatus], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Run one command; its results, or the typed ``DongleError`` for a non-OK status."""
        if self._closed:
            raise LinkError("the link is closed; open the dongle again")
        with self._lock:
            response = self._exchange(
                Request(command, secrets.randbits(32), params or {}),
                timeout,
                on_keepalive,
                cancel,
            )
        if response.status is not Status.OK:
            raise dongle_error(response.status, response.body)
        return response.body

    # -- the exchange ----------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _exchange(
        self,
        request: Request,
        timeout: float,
        on_keepalive: Callable[[KeepaliveStatus], None] | None,
        cancel: threading.Event | None,
    ) -> Response:
        repeatable = request.command in IDEMPOTENT_COMMANDS
        seq = self._next_seq()
        self._send(encode_message(request, seq))
        attempts = 0
        cancelled = False
        deadline = time.monotonic() + timeout
        while True:
            if cancel is not None and cancel.is_set() and not cancelled:
                cancelled = True
                self._send(encode_message(Cancel(request.request_id), seq))
            remaining = deadline - time.monotonic()
            outcome: str
            if remaining <= 0:
                outcome = "timeout"
            else:
                received = self._receive(min(remaining, POLL_MS / 1000))
                if received is None:
                    continue
                outcome = self._classify(received, request.request_id, seq)
                message = received[1] if isinstance(received, tuple) else None
                if isinstance(message, Response) and outcome == "answer":
                    if message.status is Status.INVALID_SEQ:
                        # Our sequence number collided with the dongle's memory; nothing ran.
                        seq = self._next_seq()
                        self._send(encode_message(request, seq))
                        deadline = time.monotonic() + timeout
                        continue
                    return message
                if isinstance(message, Keepalive) and outcome == "keepalive":
                    deadline = time.monotonic() + timeout
                    if on_keepalive is not None:
                        on_keepalive(message.status)
                    continue
                if outcome == "stale":
                    continue
            # "timeout", "damaged" or "link_error": the request or its answer was lost.
            if not repeatable:
                raise (LinkTimeout if outcome == "timeout" else LinkCorrupted)(
                    f"{request.command.name} got no usable answer ({outcome}); it may or may not "
                    "have run: check the dongle with GET_INFO before trying again"
                )
            # LINK_ERRORs carry no request id: some may answer garbage sent before our request,
            # so they get a larger budget than timeouts (a retransmission is harmless either way).
            budget = self._retransmits * (LINK_ERROR_BUDGET if outcome == "link_error" else 1)
            if attempts >= budget:
                raise (LinkTimeout if outcome == "timeout" else LinkCorrupted)(
                    f"{request.command.name} failed after {attempts} retransmissions ({outcome}); "
                    "re-plug the dongle or try another USB port"
                )
            attempts += 1
            self._send(encode_message(request, seq, FrameFlag.RETRANSMIT))
            deadline = time.monotonic() + timeout

    @staticmethod
    def _classify(received: tuple[int, Message] | _Damaged, request_id: int, seq: int) -> str:
        if isinstance(received, _Damaged):
            return "damaged"
        frame_seq, message = received
        if isinstance(message, LinkErrorMessage):
            return "link_error"
        if isinstance(message, Response | Keepalive) and (message.request_id, frame_seq) == (
            request_id,
            seq,
        ):
            return "answer" if isinstance(message, Response) else "keepalive"
        return "stale"

    def _send(self, frame: bytes) -> None:
        try:
            self.device.write(EP_OUT, frame, timeout=1000)
            if len(frame) % PACKET_SIZE == 0:
                self.device.write(EP_OUT, b"", timeout=1000)  # ZLP ends the transfer
        except usb.core.USBTimeoutError:
            raise LinkTimeout("the dongle did not accept the request; re-plug it") from None
        except usb.core.USBError as exc:
            self._usb_failure(exc, EP_OUT)

    def _receive(self, wait: float) -> tuple[int, Message] | _Damaged | None:
        """One IN transfer: (seq, message), a _Damaged marker, or None after ``wait``."""
        try:
            data = self.device.read(EP_IN, READ_SIZE, timeout=max(1, int(wait * 1000)))
        except usb.core.USBTimeoutError:
            return None
        except usb.core.USBError as exc:
            self._usb_failure(exc, EP_IN)
            return _Damaged()
        items = FrameDecoder().feed(bytes(data))
        for item in items:
            if isinstance(item, FrameError):
                continue
            try:
                message = decode_message(item)
            except MessageError:
                return _Damaged()
            return (item.seq, message)
        return _Damaged()

    def _usb_failure(self, exc: usb.core.USBError, endpoint: int) -> None:
        """Unplugged: DongleRemoved. A stalled endpoint is cleared (the transfer counts as lost)."""
        if _is_gone(exc):
            raise DongleRemoved(str(exc)) from None
        if exc.errno == errno.EPIPE:
            try:
                self.device.clear_halt(endpoint)
                return
            except usb.core.USBError as again:
                if _is_gone(again):
                    raise DongleRemoved(str(again)) from None
        raise LinkCorrupted(f"USB transfer failed: {exc}; re-plug the dongle") from None


class _Damaged:
    """An IN transfer that did not hold a decodable frame."""
