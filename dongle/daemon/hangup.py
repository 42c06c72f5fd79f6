"""Notices clients that hang up while the daemon works for them.

A connection's thread is busy in a dongle command (or waiting for a lease) and cannot read its
socket, so one epoll thread watches those sockets for the peer's hang-up (EPOLLRDHUP) and calls
the connection's cancel callback: the dongle command gets CANCEL and the lease wait ends.
Registering costs two syscalls per request and no thread wake-up: epoll accepts changes while
another thread waits in it.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

_HANGUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR


class HangupWatcher:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wakeup, select.EPOLLIN)
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hangup-watcher", daemon=True)
        self._running = True
        self._thread.start()

    @contextmanager
    def watching(self, fd: int, on_hangup: Callable[[], None]) -> Iterator[None]:
        """Call ``on_hangup`` (once, from the watcher thread) if ``fd``'s peer hangs up inside."""
        with self._lock:
            self._callbacks[fd] = on_hangup
        self._epoll.register(fd, _HANGUP | select.EPOLLONESHOT)
        try:
            yield
        finally:
            with self._lock:
                self._callbacks.pop(fd, None)
            with suppress(OSError):
                self._epoll.unregister(fd)

    def _run(self) -> None:
        while self._running:
            for fd, _mask in self._epoll.poll():
                if fd == self._wakeup:
                    continue
                with self._lock:
                    callback = self._callbacks.pop(fd, None)
                if callback is not None:
                    callback()

    def close(self) -> None:
        self._running = False
        os.eventfd_write(self._wakeup, 1)
        self._thread.join(timeout=2)
        self._epoll.close()
        os.close(self._wakeup)
