"""The Unix-socket server: one thread per client connection, events fanned out by one thread.

A connection's thread reads a request, runs it, answers, and reads the next; a client that wants
several requests in flight opens several connections. While the thread is busy in a dongle
command, the hang-up watcher notices if the client goes away and cancels the command.

Every wait on a client is bounded (docs/daemon-api.md §2): a message begun must be finished
within ``message_timeout``, a connection with nothing to do ends after ``client_idle_timeout``,
and a client that takes no reply or event within its send time-out is dropped. Each of these
ends the connection, and with it the client's leases.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from dongle.daemon.access import AccessPolicy, Peer
from dongle.daemon.admission import CannotAccept, Gate
from dongle.daemon.config import DaemonConfig
from dongle.daemon.devices import DeviceManager
from dongle.daemon.hangup import HangupWatcher
from dongle.daemon.leases import Cancelled, LeaseTable
from dongle.daemon.log import log
from dongle.daemon.ops import DAEMON_OPS, DONGLE_OPS, run_dongle_op, shown
from dongle.errors import (
    AccessDenied,
    BadRequest,
    DaemonError,
    MessageTooLarge,
    UnsupportedVersion,
    error_to_wire,
)
from dongle.model import Priority
from dongle.wire import API_VERSION, MAX_MESSAGE, IdleTimeout, MessageStream, SendTimeout
from protocol.errors import DongleError

_EVENT_SEND_TIMEOUT = 0.5  # a subscriber that cannot take an event this fast is dropped
# The kernel's buffer for what a client has not read yet: room for a few replies and events,
# and no more, so a client that stops reading is noticed (and dropped) within the send time-out.
_SEND_BUFFER = 4 * MAX_MESSAGE
ACCEPT_PAUSE = 0.5  # seconds without accepting after accept() failed for want of descriptors


@dataclass
class Daemon:
    """What every connection needs: configuration, policy, admission, dongles, leases, events."""

    config: DaemonConfig
    policy: AccessPolicy
    gate: Gate
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

    def subscribed(self, conn: Connection) -> bool:
        with self._lock:
            return conn in self._subscribers

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            message = {"v": API_VERSION, **event}
            with self._lock:
                subscribers = list(self._subscribers)
            for conn in subscribers:
                if not conn.send(message, _EVENT_SEND_TIMEOUT):
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
        self._dropped: str | None = None  # why the daemon hung up on this client, if it did

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
            while (request := self._read()) is not None:
                if not self._handle(request):
                    reason = "bad request"
                    return
            reason = self._dropped or reason
        except BadRequest as exc:  # malformed, oversized or unfinished: framing is lost
            reason = f"bad message ({exc.code})"
            self._reply_error(None, exc)
        except IdleTimeout:
            reason = "idle"
        except OSError:
            reason = self._dropped or "connection lost"
        finally:
            self.close()
            # The slot first: whoever sees the lease end may connect again at once.
            self.daemon.gate.leave(self.peer)
            released = self.daemon.leases.release_all(self)
            self.daemon.events.discard(self)
            log(
                "client_gone",
                conn=self.number,
                client=self.client,
                reason=reason,
                released=",".join(released) or "-",
            )

    def _read(self) -> dict[str, Any] | None:
        config = self.daemon.config
        # A subscriber waits for events, not for its own requests: it may stay quiet for good.
        idle = None if self.daemon.events.subscribed(self) else config.client_idle_timeout
        return self.stream.read(idle_timeout=idle, message_timeout=config.message_timeout)

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
                raise BadRequest(f"unknown operation {shown(op)}")
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
        try:
            self.send({"v": API_VERSION, **message})
        except MessageTooLarge as exc:  # a reply the daemon built too large: its own bug
            log("internal_error", level="error", conn=self.number, error=repr(exc))
            self._reply_error(
                message.get("id"), DaemonError("internal error in the dongle daemon: see its log")
            )

    def _reply_error(self, request_id: int | None, exc: DaemonError) -> None:
        self._reply({"id": request_id, "ok": False, "error": error_to_wire(exc)})

    def send(self, message: dict[str, Any], timeout: float | None = None) -> bool:
        """Send a message within ``timeout`` (default: the configured send time-out); False, and
        the connection shut so its thread ends, if the client did not take it in time."""
        wait = self.daemon.config.send_timeout if timeout is None else timeout
        if not self._write_lock.acquire(timeout=wait):
            self._drop("not reading")
            return False
        try:
            self.stream.write(message, timeout=wait)
            return True
        except SendTimeout:
            self._drop("not reading")
            return False
        except OSError:
            return False
        finally:
            self._write_lock.release()

    def _drop(self, reason: str) -> None:
        log("client_dropped", conn=self.number, client=self.client, reason=reason)
        self._dropped = reason
        self.close()

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

    def accept(self) -> float:
        """Take the waiting connection, if admitted; returns how long to pause accepting (0 but
        after a failed ``accept``)."""
        try:
            admitted = self.daemon.gate.accept()
        except CannotAccept:
            return ACCEPT_PAUSE
        if admitted is None:
            return 0.0
        sock, peer = admitted
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
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
