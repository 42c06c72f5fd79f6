"""Client library of tvpay-dongled, used by the TV app and the staff tool.

    client = DaemonClient(client_name="tvapp", priority=Priority.HIGH)
    with client.acquire(wait=5):  # registered_key: a protocol.pin.DongleKey from the gateway
        token = pin_client.obtain_pin_token(client, pin, registered_key)
        signed = client.sign_payment(fields, pin_client.payment_pin_auth(token, fields))

Thread-friendly: requests from several threads are serialised on the client's one connection
(a lock per request); use one client per thread for parallel requests. Leases belong to the
connection: if it breaks (daemon restart) the next request reconnects and the lease is gone.
Events are delivered on a background thread by ``subscribe``. Every failure is a typed error of
``dongle.errors``; the dongle's own refusals are ``protocol.errors.DongleError`` subclasses.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dongle.card import CardSlot
from dongle.errors import (
    AccessDenied,
    DaemonError,
    DaemonUnavailable,
    DongleTimeout,
    dongle_status_error,
    error_from_wire,
)
from dongle.model import (
    DeviceInfo,
    DongleEvent,
    EventKind,
    LeaseHolder,
    Priority,
    SessionSignature,
    SignedPayment,
)
from dongle.wire import API_VERSION, API_VERSIONS, MessageStream

DEFAULT_SOCKET = "/run/tvpay/dongled.sock"
_log = logging.getLogger(__name__)

__all__ = [
    "CardSlot",
    "DaemonClient",
    "DeviceInfo",
    "DongleEvent",
    "KeyAgreementOffer",
    "Lease",
    "LeaseHolder",
    "Priority",
    "SessionSignature",
    "SignedPayment",
    "Subscription",
    "default_socket_path",
]


def default_socket_path() -> str:
    return os.environ.get("TVPAY_DONGLED_SOCKET") or DEFAULT_SOCKET


class _ReplyTimeout(Exception):
    pass


def _raise_error(error: Any) -> None:
    if isinstance(error, dict) and error.get("code") == "dongle":
        status = error.get("status")
        body = error.get("body")
        raise dongle_status_error(
            status if isinstance(status, int) else 0x7F, body if isinstance(body, dict) else {}
        )
    raise error_from_wire(error)


class _Channel:
    """One connection to the daemon, greeted with ``hello``."""

    def __init__(self, path: str, client_name: str, priority: Priority, timeout: float) -> None:
        self.path = path
        self.sock = _connect(path, timeout)
        self.stream = MessageStream(self.sock)
        self._ids = itertools.count(1)
        try:
            self.hello = self.exchange(
                "hello",
                {"client": client_name, "priority": priority.value, "versions": list(API_VERSIONS)},
                None,
                timeout,
                None,
            )
        except (OSError, ConnectionError, _ReplyTimeout) as exc:
            self.close()
            raise DaemonUnavailable(path, f"no greeting from the daemon: {exc!r}") from None
        except BaseException:
            self.close()
            raise

    def alive(self) -> bool:
        """False when the daemon closed the connection since the last answer (e.g. restart)."""
        self.sock.setblocking(False)  # a socket with a timeout would wait despite MSG_DONTWAIT
        try:
            return self.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def send(self, op: str, args: dict[str, Any] | None, serial: str | None) -> int:
        request_id = next(self._ids)
        message: dict[str, Any] = {"v": API_VERSION, "id": request_id, "op": op}
        if args:
            message["args"] = args
        if serial is not None:
            message["serial"] = serial
        self.stream.write(message)
        return request_id

    def exchange(
        self,
        op: str,
        args: dict[str, Any] | None,
        serial: str | None,
        timeout: float,
        on_progress: Callable[[str], None] | None,
    ) -> dict[str, Any]:
        try:
            request_id = self.send(op, args, serial)
        except OSError:
            self._raise_parting_error(timeout)
            raise
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ReplyTimeout()
            self.sock.settimeout(remaining)
            try:
                reply = self.stream.read()
            except TimeoutError:
                raise _ReplyTimeout() from None
            if reply is None:
                raise ConnectionError("the daemon closed the connection")
            reply_id = reply.get("id")
            if reply_id is None and reply.get("ok") is False:
                _raise_error(reply.get("error"))  # about the whole connection (access, framing)
            if reply_id != request_id:
                continue  # an event, or the answer to a request we gave up on
            if "progress" in reply:
                if on_progress is not None:
                    on_progress(str(reply["progress"]))
                deadline = time.monotonic() + timeout  # the dongle is working: wait again
                continue
            if reply.get("ok") is True:
                result = reply.get("result")
                return result if isinstance(result, dict) else {}
            _raise_error(reply.get("error"))

    def _raise_parting_error(self, timeout: float) -> None:
        """The daemon hung up on us: raise the error it sent first (e.g. access denied), if any."""
        self.sock.settimeout(timeout)
        try:
            reply = self.stream.read()
        except (OSError, DaemonError):
            return
        if reply is not None and reply.get("ok") is False:
            _raise_error(reply.get("error"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _connect(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except PermissionError:
        sock.close()
        raise AccessDenied(
            f"this user may not open the dongle daemon's socket {path}: add it to the group "
            "that owns the socket (see 'tvpay-dongle doctor')"
        ) from None
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise DaemonUnavailable(path) from None
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(path, exc.strerror or str(exc)) from None
    return sock


@dataclass(frozen=True, slots=True)
class KeyAgreementOffer:
    """GET_KEY_AGREEMENT as relayed by the daemon: check ``signature`` with
    ``protocol.pin.verify_key_agreement`` before using ``key`` (``dongle.pin_client`` does)."""

    key: bytes
    signature: bytes | None  # None: the dongle (or whoever answered) did not bind the key


class DaemonClient:
    def __init__(
        self,
        socket_path: str | None = None,
        *,
        client_name: str = "client",
        priority: Priority = Priority.NORMAL,
        timeout: float = 10.0,
    ) -> None:
        self.socket_path = socket_path or default_socket_path()
        self.client_name = client_name
        self.priority = Priority(priority)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._channel: _Channel | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def _call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        serial: str | None = None,
        *,
        on_progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        wait = self.timeout if timeout is None else timeout
        with self._lock:
            if self._channel is not None and not self._channel.alive():
                self._drop()
            try:
                if self._channel is None:
                    self._channel = _Channel(
                        self.socket_path, self.client_name, self.priority, self.timeout
                    )
                return self._channel.exchange(op, args, serial, wait, on_progress)
            except _ReplyTimeout:
                self._drop()  # the answer may still come: never read it as another's
                raise DongleTimeout(
                    f"the dongle daemon did not answer '{op}' within {wait:.0f} s: "
                    "check 'tvpay-dongle doctor'"
                ) from None
            except (OSError, ConnectionError) as exc:
                self._drop()
                raise DaemonUnavailable(self.socket_path, f"connection lost: {exc}") from None
            except AccessDenied:
                self._drop()
                raise

    def _drop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def close(self) -> None:
        """Close the connection; leases held through it end."""
        with self._lock:
            self._drop()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the daemon ---------------------------------------------------------------------------

    def devices(self) -> list[DeviceInfo]:
        """The dongles plugged in (from the daemon's cache: no USB traffic)."""
        entries = self._call("devices").get("devices")
        return [DeviceInfo.from_wire(e) for e in entries] if isinstance(entries, list) else []

    def info(self, serial: str | None = None) -> DeviceInfo:
        """Fresh GET_INFO of a dongle, with who holds it."""
        return DeviceInfo.from_wire(self._call("info", serial=serial))

    def subscribe(self, callback: Callable[[DongleEvent], None]) -> Subscription:
        return Subscription(self.socket_path, self.client_name, callback, self.timeout)

    def acquire(self, serial: str | None = None, *, wait: float = 0.0) -> Lease:
        """Hold the dongle for this client until ``release()`` or the connection closes.

        Raises DongleBusy naming the holder if it is not free within ``wait`` seconds.
        """
        result = self._call(
            "acquire",
            {"wait_ms": int(wait * 1000)},
            serial,
            timeout=self.timeout + wait,
        )
        return Lease(
            self,
            str(result.get("serial", serial or "")),
            LeaseHolder.from_wire(result.get("holder")),
        )

    def _release(self, serial: str) -> None:
        self._call("release", serial=serial)

    # -- the dongle ---------------------------------------------------------------------------

    def ping(self, data: bytes = b"", serial: str | None = None) -> bytes:
        echoed = self._call("ping", {"data": data}, serial).get("data")
        return echoed if isinstance(echoed, bytes) else b""

    def key_agreement(self, nonce: bytes, serial: str | None = None) -> KeyAgreementOffer:
        """The dongle's key-agreement key, signed over ``nonce`` (16..64 fresh random bytes)."""
        result = self._call("key_agreement", {"nonce": nonce}, serial)
        signature = result.get("signature")
        return KeyAgreementOffer(
            _bytes(result, "key"), signature if isinstance(signature, bytes) else None
        )

    def pin_token(
        self, key_agreement: bytes, pin_hash_enc: bytes, serial: str | None = None
    ) -> bytes:
        """Relay an encrypted PIN hash; returns ``pin_token_enc`` (decrypt with the host session)."""
        result = self._call(
            "pin_token", {"key_agreement": key_agreement, "pin_hash_enc": pin_hash_enc}, serial
        )
        return _bytes(result, "pin_token_enc")

    def sign_payment(
        self,
        fields: dict[str, Any],
        pin_auth: bytes,
        serial: str | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> SignedPayment:
        result = self._call(
            "sign_payment",
            {"fields": fields, "pin_auth": pin_auth},
            serial,
            on_progress=on_progress,
        )
        return SignedPayment.from_wire(result)

    def sign_session(
        self, gateway_id: str, challenge: bytes, timestamp: int, serial: str | None = None
    ) -> SessionSignature:
        result = self._call(
            "sign_session",
            {"gateway_id": gateway_id, "challenge": challenge, "timestamp": timestamp},
            serial,
        )
        return SessionSignature.from_wire(result)

    def change_pin(
        self,
        key_agreement: bytes,
        pin_hash_enc: bytes,
        new_pin_enc: bytes,
        serial: str | None = None,
    ) -> None:
        self._call(
            "change_pin",
            {
                "key_agreement": key_agreement,
                "pin_hash_enc": pin_hash_enc,
                "new_pin_enc": new_pin_enc,
            },
            serial,
        )

    # -- the card slot (dongle/card.py runs whole card exchanges) ------------------------------

    def card_status(self, serial: str | None = None) -> CardSlot:
        """Whether a card is in the dongle's slot, its ATR, and the slot's event count."""
        return CardSlot.from_wire(self._call("card_status", None, serial))

    def card_transmit(self, apdu: bytes, slot_events: int, serial: str | None = None) -> bytes:
        """Send one command APDU to the card first seen at ``slot_events``; the card's answer,
        unchecked (``protocol.card.check_response`` reads it). Raises ``CardAbsent`` or
        ``CardChanged`` (dongle.errors) when that card is no longer in the slot. Never resent:
        the card would run the APDU twice."""
        result = self._call("card_transmit", {"apdu": apdu, "slot_events": slot_events}, serial)
        return _bytes(result, "rapdu")

    # -- provisioning (staff group only) ------------------------------------------------------

    def attest(self, nonce: bytes, serial: str | None = None) -> dict[str, Any]:
        return self._call("attest", {"nonce": nonce}, serial)

    def generate_key(self, serial: str | None = None) -> dict[str, Any]:
        return self._call("generate_key", None, serial)

    def read_cert(self, serial: str | None = None) -> bytes | None:
        certificate = self._call("read_cert", None, serial).get("certificate")
        return certificate if isinstance(certificate, bytes) else None

    def write_cert(self, der: bytes, serial: str | None = None) -> None:
        self._call("write_cert", {"certificate": der}, serial)

    def set_pin(
        self, key_agreement: bytes, new_pin_enc: bytes, puk_enc: bytes, serial: str | None = None
    ) -> None:
        self._call(
            "set_pin",
            {"key_agreement": key_agreement, "new_pin_enc": new_pin_enc, "puk_enc": puk_enc},
            serial,
        )

    def unblock_pin(
        self, key_agreement: bytes, puk_enc: bytes, new_pin_enc: bytes, serial: str | None = None
    ) -> None:
        self._call(
            "unblock_pin",
            {"key_agreement": key_agreement, "puk_enc": puk_enc, "new_pin_enc": new_pin_enc},
            serial,
        )

    def lock(self, serial: str | None = None) -> None:
        self._call("lock", None, serial)

    def wipe(self, serial: str | None = None) -> None:
        self._call("wipe", None, serial)


def _bytes(result: dict[str, Any], key: str) -> bytes:
    value = result.get(key)
    if not isinstance(value, bytes):
        raise DaemonError(f"the daemon's answer lacks '{key}': update tvpay-dongled")
    return value


class Lease:
    """The right to use one dongle alone; a context manager that releases on exit."""

    def __init__(self, client: DaemonClient, serial: str, holder: LeaseHolder | None) -> None:
        self.client = client
        self.serial = serial
        self.holder = holder
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        # If the connection is gone, the lease went with it.
        with contextlib.suppress(DaemonUnavailable):
            self.client._release(self.serial)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Subscription:
    """Dongle events on a background thread, over a connection of its own.

    If the daemon goes away, the dongles it reported are announced ``removed``; the subscription
    reconnects (backing off up to 5 s) and announces the dongles it then finds ``inserted``.
    """

    _BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)

    def __init__(
        self,
        socket_path: str,
        client_name: str,
        callback: Callable[[DongleEvent], None],
        timeout: float,
    ) -> None:
        self._path = socket_path
        self._name = f"{client_name}/events"
        self._callback = callback
        self._timeout = timeout
        self._closed = threading.Event()
        self._known: set[str] = set()
        self._channel = self._open()  # the first connection's errors go to the caller
        self.devices = self._initial
        self._thread = threading.Thread(target=self._run, name="dongle-events", daemon=True)
        self._thread.start()

    def _open(self) -> _Channel:
        channel = _Channel(self._path, self._name, Priority.NORMAL, self._timeout)
        try:
            result = channel.exchange("subscribe", None, None, self._timeout, None)
        except BaseException:
            channel.close()
            raise
        channel.sock.settimeout(None)
        entries = result.get("devices")
        self._initial = (
            [DeviceInfo.from_wire(e) for e in entries] if isinstance(entries, list) else []
        )
        return channel

    def _run(self) -> None:
        attempt = 0
        while not self._closed.is_set():
            with contextlib.suppress(OSError, ConnectionError, DaemonError):
                self._pump(self._channel)
            self._channel.close()
            if self._closed.is_set():
                return
            for serial in sorted(self._known):
                self._deliver(DongleEvent(EventKind.REMOVED.value, serial))
            self._known.clear()
            while not self._closed.wait(self._BACKOFF[min(attempt, len(self._BACKOFF) - 1)]):
                attempt += 1
                try:
                    self._channel = self._open()
                except DaemonError:
                    continue
                if self._closed.is_set():
                    self._channel.close()
                    return
                attempt = 0
                for info in self._initial:
                    self._deliver(DongleEvent(EventKind.INSERTED.value, info.serial, info.state))
                break

    def _pump(self, channel: _Channel) -> None:
        self._known.update(info.serial for info in self._initial)
        while (message := channel.stream.read()) is not None:
            if "event" not in message:
                continue
            self._deliver(DongleEvent.from_wire(message))

    def _deliver(self, event: DongleEvent) -> None:
        if event.kind == EventKind.INSERTED:
            self._known.add(event.serial)
        elif event.kind == EventKind.REMOVED:
            self._known.discard(event.serial)
        if self._closed.is_set():
            return
        try:
            self._callback(event)
        except Exception:  # the subscriber's bug must not stop the events
            _log.exception("dongle event callback failed for %s", event.kind)

    def close(self) -> None:
        self._closed.set()
        self._channel.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
