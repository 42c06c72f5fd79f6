"""An HTTP relay in front of the real gateway that lies in one place: the ``sign_fields`` of the
payments it creates are rewritten by ``tamper`` before the TV app sees them. Everything else
(bills, sessions, authorizations) passes through unchanged, over real HTTP both ways.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fixtures.http_relay import HttpRelay

Tamper = Callable[[dict[str, Any]], dict[str, Any]]


class LyingGateway(HttpRelay):
    def __init__(self, upstream: str) -> None:
        self.tamper: Tamper = lambda fields: fields
        self.created: list[str] = []  # payment ids whose fields were rewritten
        super().__init__(upstream)

    def rewrite(self, method: str, path: str, status: int, content: bytes) -> bytes:
        if method == "POST" and path == "/api/v1/payments" and status == 201:
            created = json.loads(content)
            created["sign_fields"] = self.tamper(created["sign_fields"])
            self.created.append(created["payment_id"])
            return json.dumps(created).encode()
        return content
