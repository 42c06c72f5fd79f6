"""An HTTP relay in front of the real gateway that lies in one place: the ``sign_fields`` of the
payments it creates are rewritten by ``tamper`` before the TV app sees them. Everything else
(bills, sessions, authorizations) passes through unchanged, over real HTTP both ways.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

Tamper = Callable[[dict[str, Any]], dict[str, Any]]
_FORWARDED = ("Authorization", "Content-Type", "Idempotency-Key")


class LyingGateway:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper: Tamper = lambda fields: fields
        self.created: list[str] = []  # payment ids whose fields were rewritten
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                relay._relay(self, "GET")

            def do_POST(self) -> None:
                relay._relay(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _relay(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: handler.headers[k] for k in _FORWARDED if handler.headers.get(k)}
        answer = requests.request(
            method, self.upstream + handler.path, data=body, headers=headers, timeout=30
        )
        content = answer.content
        if method == "POST" and handler.path == "/api/v1/payments" and answer.status_code == 201:
            created = answer.json()
            created["sign_fields"] = self.tamper(created["sign_fields"])
            self.created.append(created["payment_id"])
            content = json.dumps(created).encode()
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
