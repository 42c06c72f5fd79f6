"""Who gets a connection: accepting from the listening socket under a cap per user and a cap in
all, and surviving file-descriptor exhaustion.

A connection over a cap is accepted, sent one ``too_many_connections`` error and closed at once,
without a thread, so a flood from one user costs the daemon nothing that lasts and leaves room
for everyone else. When ``accept`` fails for want of descriptors (EMFILE, ENFILE) the daemon
closes the one spare descriptor it keeps, accepts the waiting connection, refuses it with the
same error and reopens the spare: the client learns why instead of waiting in the backlog. If
even that fails, ``CannotAccept`` tells the caller to pause accepting for a moment, since the
listener stays readable and retrying at once would spin.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections import Counter
from contextlib import suppress

from dongle.daemon.access import Peer, peer_of
from dongle.daemon.log import log
from dongle.errors import DaemonError, TooManyConnections, error_to_wire
from dongle.wire import API_VERSION, encode

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CannotAccept(Exception):
    """``accept`` failed and retrying at once would fail again: pause accepting for a moment."""


def refuse(sock: socket.socket, exc: DaemonError) -> None:
    """Send ``exc`` as the connection's only message, without waiting, and close it."""
    message = {"v": API_VERSION, "id": None, "ok": False, "error": error_to_wire(exc)}
    with suppress(OSError):  # a fresh socket's empty buffer takes it; a vanished peer does not
        sock.send(encode(message), socket.MSG_DONTWAIT)
    sock.close()


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


class Gate:
    """Accepts and counts connections. ``accept`` runs on one thread; ``leave`` on any."""

    def __init__(self, listener: socket.socket, per_uid: int, total: int) -> None:
        self._listener = listener
        self._per_uid = per_uid
        self._total = total
        self._open: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._spare = _open_spare()

    def accept(self) -> tuple[socket.socket, Peer] | None:
        """The next admitted connection and its caller; None when none was waiting or the one
        waiting was refused. Raises CannotAccept."""
        if self._spare is None:  # spent at the last shedding and not yet taken back
            self._spare = _open_spare()
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        except OSError as exc:
            if exc.errno in _OUT_OF_DESCRIPTORS:
                self._shed(exc)
                return None
            log("accept_failed", level="error", error=exc)
            raise CannotAccept(str(exc)) from None
        try:
            peer = peer_of(sock)
        except OSError:  # the caller vanished already
            sock.close()
            return None
        refusal = self._admit(peer.uid)
        if refusal is not None:
            log("client_refused", level="warning", pid=peer.pid, uid=peer.uid, limit=refusal.limit)
            refuse(sock, refusal)
            return None
        return sock, peer

    def leave(self, peer: Peer) -> None:
        """A connection admitted for ``peer`` has ended."""
        with self._lock:
            self._open[peer.uid] -= 1
            if not self._open[peer.uid]:
                del self._open[peer.uid]

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    def _admit(self, uid: int) -> TooManyConnections | None:
        with self._lock:
            if self._open[uid] >= self._per_uid:
                return TooManyConnections(
                    f"user {uid} already has {self._per_uid} connections open to the dongle "
                    "daemon, the most it allows one user ([clients] max_per_uid): close the "
                    "ones you no longer use (one per client is enough), then retry",
                    self._per_uid,
                )
            if self._open.total() >= self._total:
                return TooManyConnections(
                    f"the dongle daemon already serves {self._total} connections, the most it "
                    "allows ([clients] max_total): retry shortly",
                    self._total,
                )
            self._open[uid] += 1
            return None

    def _shed(self, failure: OSError) -> None:
        """Out of descriptors: spend the spare on answering the waiting caller, then take it back."""
        if self._spare is None:  # could not be taken back yet: nothing to free this time
            log("accept_failed", level="error", error=failure)
            raise CannotAccept(str(failure))
        os.close(self._spare)
        try:
            sock: socket.socket | None = self._listener.accept()[0]
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            sock = None
        except OSError as exc:  # freeing one was not enough (ENFILE: the whole system is out)
            self._spare = _open_spare()
            log("accept_failed", level="error", error=exc)
            raise CannotAccept(str(exc)) from None
        if sock is not None:
            log("client_refused", level="warning", reason="out of file descriptors")
            refuse(
                sock,
                TooManyConnections(
                    "the dongle daemon is out of file descriptors: retry shortly; if this "
                    "lasts, lower [clients] max_total in dongled.toml or raise its LimitNOFILE"
                ),
            )
        self._spare = _open_spare()
