"""The gateway's side of the bank's direct-debit interface (docs/money.md, "Bank mandates").

Each call answers what the bank *knows*: taken, refused, or absent (it never saw the key). A
timeout, a refused connection or a 5xx is ``BankUnreachable``: the outcome is unknown and the
caller must ask again later with the same idempotency key, never decide on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import requests

from gateway.errors import GatewayError

Outcome = Literal["taken", "refused", "absent"]


class BankUnreachable(GatewayError):
    """The bank did not answer in time, or answered something unusable: outcome unknown."""


class BankRefusedRequest(GatewayError):
    """The bank refused the request itself (4xx other than a refusal of the debit)."""


@dataclass(frozen=True, slots=True)
class DebitAnswer:
    outcome: Outcome
    reason: str = ""  # why a refusal was refused, for the payment's record


@dataclass(frozen=True, slots=True)
class BankClient:
    url: str
    timeout: float

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            response = requests.request(method, self.url + path, json=body, timeout=self.timeout)
            payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise BankUnreachable(f"the bank did not answer ({type(exc).__name__})") from None
        if response.status_code >= 500 or not isinstance(payload, dict):
            raise BankUnreachable(f"the bank answered {response.status_code}")
        return response.status_code, payload

    def debit(self, key: str, bank_token: str, amount_fen: int, currency: str) -> DebitAnswer:
        """Ask for the debit; the bank takes it at most once per key."""
        status, payload = self._call(
            "POST",
            "/debits",
            {
                "idempotency_key": key,
                "bank_token": bank_token,
                "amount_fen": amount_fen,
                "currency": currency,
            },
        )
        return _answer(status, payload)

    def lookup(self, key: str) -> DebitAnswer:
        """What became of the debit with this key; ``absent`` if the bank never took it in."""
        status, payload = self._call("GET", f"/debits/{key}")
        if status == 404 and payload.get("error", {}).get("code") == "debit_not_found":
            return DebitAnswer("absent")
        return _answer(status, payload)

    def reverse(self, key: str) -> None:
        """Give the debit back in full; the bank does it at most once per key."""
        status, payload = self._call("POST", f"/debits/{key}/reversal")
        if status != 200:
            raise BankRefusedRequest(f"the bank refused the reversal of {key}: {payload}")


def _answer(status: int, payload: dict[str, Any]) -> DebitAnswer:
    if status == 200 and payload.get("status") == "ok":
        return DebitAnswer("taken")
    if status == 402:
        return DebitAnswer("refused", "insufficient_funds")
    error = payload.get("error")
    if 400 <= status < 500 and isinstance(error, dict) and isinstance(error.get("code"), str):
        # Unknown card, another currency, a key reused: the bank took nothing and never will
        # for this key.
        return DebitAnswer("refused", error["code"][:64])
    raise BankUnreachable(f"the bank answered {status} with an unknown body")
