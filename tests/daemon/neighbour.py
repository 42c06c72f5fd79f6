"""A noisy local process for the daemon's tests: forked, running as another user, it opens
connections to the daemon, floods one and stalls another mid-message, reports how each
connection was greeted, and holds them all open until the test lets it go."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from dongle.wire import MessageStream, encode

_FLOOD_PING = encode({"v": 1, "id": 2, "op": "ping", "args": {"data": b"f" * 8000}})


def greet(sock: socket.socket, client: str = "noisy") -> str:
    """Say hello on a raw connection: "ok", or the error code the daemon answered with."""
    stream = MessageStream(sock)
    with suppress(OSError):  # a refused connection may be closed before the hello is sent
        stream.write({"v": 1, "id": 1, "op": "hello", "args": {"client": client}})
    try:
        reply = stream.read()
    except OSError:
        return "closed"
    if reply is None:
        return "closed"
    if reply.get("ok"):
        return "ok"
    error = reply.get("error", {})
    return f"{error.get('code')}:{error.get('limit')}"


def _flood(sock: socket.socket) -> None:
    """Pipeline pings without ever reading the answers, as long as the socket takes them."""
    sock.setblocking(False)
    with suppress(OSError):
        while True:
            sock.send(_FLOOD_PING)


def _noise(path: str, count: int) -> list[str]:
    outcomes = []
    admitted = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        outcomes.append(greet(sock))
        if outcomes[-1] == "ok":
            admitted.append(sock)
    if admitted:
        _flood(admitted[0])
    if len(admitted) > 1:  # a message that promises 1000 bytes and delivers 5
        admitted[1].sendall(struct.pack(">I", 1000) + b"\xa3abcd")
    return outcomes


@contextmanager
def noisy_neighbour(path: str, uid: int, gid: int, count: int) -> Iterator[list[str]]:
    """Run the noise as ``uid`` in a forked child; yields how each of its ``count`` connections
    was greeted ("ok" or "code:limit") while the child holds them open."""
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges for good, make noise, report, wait to be let go
        code = 0
        try:
            os.close(report_r)
            os.close(hold_w)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result: Any = _noise(path, count)
        except BaseException as exc:
            result = f"{type(exc).__name__}: {exc}"
            code = 1
        try:
            os.write(report_w, json.dumps(result).encode())
            os.close(report_w)
            os.read(hold_r, 1)  # returns when the parent closes its end
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(hold_r)
    try:
        with os.fdopen(report_r, "rb") as pipe:
            outcome = json.loads(pipe.read())
        assert isinstance(outcome, list), f"the noisy process failed: {outcome}"
        yield outcome
    finally:
        os.close(hold_w)
        os.waitpid(pid, 0)
