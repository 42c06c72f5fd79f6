"""An HTTP relay in front of the bench's gateway that holds one request until the test lets it go.

A test that interrupts the staff tool must do it at a point it controls, not race the process:
the relay signals ``held`` when the tool's request for ``hold_path`` arrives and forwards it only
after ``release()``, so the tool is known to be waiting right there when the test signals it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

_FORWARDED = ("Authorization", "Content-Type", "Idempotency-Key")


class HoldingGateway:
    def __init__(self, upstream: str, hold_path: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.hold_path = hold_path
        self.held = threading.Event()
        self._released = threading.Event()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                relay._relay(self, "GET")

            def do_POST(self) -> None:
                relay._relay(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _relay(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        if handler.path.split("?")[0] == self.hold_path:
            self.held.set()
            self._released.wait(60)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: handler.headers[k] for k in _FORWARDED if handler.headers.get(k)}
        answer = requests.request(
            method, self.upstream + handler.path, data=body, headers=headers, timeout=30
        )
        try:
            handler.send_response(answer.status_code)
            handler.send_header("Content-Type", answer.headers.get("Content-Type", ""))
            handler.send_header("Content-Length", str(len(answer.content)))
            handler.end_headers()
            handler.wfile.write(answer.content)
        except OSError:
            pass  # the interrupted tool hung up: nothing to answer
