"""The Unix-socket server: one thread per client connection, events fanned out by one thread.

A connection's thread reads a request, runs it, answers, and reads the next; a client that wants
several requests in flight opens several connections. While the thread is busy in a dongle
command, the hang-up watcher notices if the client goes away and cancels the command.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from dongle.daemon.access import AccessPolicy, Peer, peer_of
from dongle.daemon.config import DaemonConfig
from dongle.daemon.devices import DeviceManager
from dongle.daemon.hangup import HangupWatcher
from dongle.daemon.leases import Cancelled, LeaseTable
from dongle.daemon.log import log
from dongle.daemon.ops import DAEMON_OPS, DONGLE_OPS, run_dongle_op
from dongle.errors import AccessDenied, BadRequest, DaemonError, UnsupportedVersion
from dongle.model import Priority
from dongle.wire import API_VERSION, MessageStream, WireError, encode
from protocol.errors import DongleError

_EVENT_SEND_TIMEOUT = 0.5  # a subscriber that cannot take an event this fast is dropped


@dataclass
class Daemon:
    """What every connection needs: configuration, policy, dongles, leases and events."""

    config: DaemonConfig
    policy: AccessPolicy
    devices: DeviceManager
    leases: LeaseTable
    events: EventHub
    hangups: HangupWatcher


class EventHub:
    """Fans events out to subscribed connections from its own thread, so a publisher (holding
    the lease table's lock, say) never waits on a slow client."""

    def __init__(self) -> None:
        self._subscribers: set[Connection] = set()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def publish(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def add(self, conn: Connection) -> None:
        with self._lock:
            self._subscribers.add(conn)

    def discard(self, conn: Connection) -> None:
        with self._lock:
            self._subscribers.discard(conn)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            message = {"v": API_VERSION, **event}
            with self._lock:
                subscribers = list(self._subscribers)
            for conn in subscribers:
                if not conn.send_event(message):
                    self.discard(conn)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2)


class Connection:
    def __init__(self, daemon: Daemon, sock: socket.socket, peer: Peer, number: int) -> None:
        self.daemon = daemon
        self.sock = sock
        self.peer = peer
        self.number = number
        self.stream = MessageStream(sock)
        self.client = "client"
        self.priority = Priority.NORMAL
        self.staff = daemon.policy.is_staff(peer)
        self.cancel = threading.Event()
        self._write_lock = threading.Lock()

    def serve(self) -> None:
        log("client_connected", conn=self.number, pid=self.peer.pid, uid=self.peer.uid)
        reason = "closed"
        try:
            if not self.daemon.policy.allows(self.peer):
                reason = "refused"
                self._reply_error(
                    None,
                    AccessDenied(
                        f"user {self.peer.uid} may not use the payment dongle: add it to one "
                        "of the groups in [access] groups of dongled.toml"
                    ),
                )
                return
            while (request := self.stream.read()) is not None:
                if not self._handle(request):
                    reason = "bad request"
                    return
        except WireError as exc:
            reason = "bad message"
            self._reply_error(None, exc)
        except OSError:
            reason = "connection lost"
        finally:
            self.close()
            released = self.daemon.leases.release_all(self)
            self.daemon.events.discard(self)
            log(
                "client_gone",
                conn=self.number,
                client=self.client,
                reason=reason,
                released=",".join(released) or "-",
            )

    def _handle(self, request: dict[str, Any]) -> bool:
        """Run one request; False when the envelope was malformed and the connection must end."""
        request_id = request.get("id")
        op = request.get("op")
        if (
            not isinstance(request_id, int)
            or isinstance(request_id, bool)
            or not 0 <= request_id < 2**63
            or not isinstance(op, str)
        ):
            self._reply_error(None, BadRequest("a request needs an integer 'id' and a text 'op'"))
            return False
        self.cancel = threading.Event()
        try:
            if request.get("v") != API_VERSION:
                raise UnsupportedVersion(f"this daemon speaks API version {API_VERSION}")
            if op in DONGLE_OPS:
                result = run_dongle_op(self, op, request)
            elif op in DAEMON_OPS:
                result = DAEMON_OPS[op](self, request)
            else:
                raise BadRequest(f"unknown operation {op!r}")
        except Cancelled:
            return True  # the client hung up; the read loop will see it
        except DaemonError as exc:
            self._reply_error(request_id, exc)
            return True
        except DongleError as exc:
            self._reply(
                {
                    "id": request_id,
                    "ok": False,
                    "error": {
                        "code": "dongle",
                        "status": exc.status,
                        "body": exc.body,
                        "message": str(exc),
                    },
                }
            )
            return True
        except Exception as exc:  # a bug must not take the other clients down
            log("internal_error", level="error", conn=self.number, op=op, error=repr(exc))
            self._reply_error(
                request_id, DaemonError("internal error in the dongle daemon: see its log")
            )
            return True
        self._reply({"id": request_id, "ok": True, "result": result})
        return True

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Cancel what runs inside if the client hangs up meanwhile."""
        with self.daemon.hangups.watching(self.sock.fileno(), self._hung_up):
            yield

    def _hung_up(self) -> None:
        log("client_hung_up", conn=self.number, client=self.client)
        self.cancel.set()
        self.daemon.leases.wake()

    def _reply(self, message: dict[str, Any]) -> None:
        self.send({"v": API_VERSION, **message})

    def _reply_error(self, request_id: int | None, exc: DaemonError) -> None:
        error = {"code": exc.code, "message": str(exc), **exc.details()}
        with suppress(OSError):
            self._reply({"id": request_id, "ok": False, "error": error})

    def send(self, message: dict[str, Any]) -> None:
        with self._write_lock:
            self.stream.write(message)

    def send_event(self, message: dict[str, Any]) -> bool:
        """Send an event without blocking for long; False (and the connection shut) if the
        client is not reading its socket."""
        deadline = time.monotonic() + _EVENT_SEND_TIMEOUT
        if not self._write_lock.acquire(timeout=_EVENT_SEND_TIMEOUT):
            self.close()
            return False
        try:
            view = memoryview(encode(message))
            poller = select.poll()
            poller.register(self.sock, select.POLLOUT)
            while view:
                try:
                    view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
                except BlockingIOError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not poller.poll(remaining * 1000):
                        self.close()
                        return False
                except OSError:
                    return False
            return True
        finally:
            self._write_lock.release()

    def close(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class Server:
    """Accepts connections and keeps track of them for a graceful shutdown."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._connections: dict[Connection, threading.Thread] = {}
        self._lock = threading.Lock()
        self._numbers = iter(range(1, 2**62))

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(True)
        try:
            peer = peer_of(sock)
        except OSError:
            sock.close()
            return
        conn = Connection(self.daemon, sock, peer, next(self._numbers))
        thread = threading.Thread(target=self._serve, args=(conn,), name=f"conn-{conn.number}")
        thread.daemon = True
        with self._lock:
            self._connections[conn] = thread
        thread.start()

    def _serve(self, conn: Connection) -> None:
        try:
            conn.serve()
        finally:
            conn.sock.close()
            with self._lock:
                self._connections.pop(conn, None)

    def shutdown(self, grace: float) -> None:
        """Cancel what runs, hang up on every client, wait up to ``grace`` for their threads."""
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            conn.cancel.set()
            conn.close()
        self.daemon.leases.wake()
        for thread in connections.values():
            thread.join(timeout=grace)
