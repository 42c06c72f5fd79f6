"""HTTP client of the payment gateway (docs/gateway.md), used from worker threads.

TLS is verified against the configured CA file (or the system store), whatever
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE say. Errors are sorted into
what the user can act on: the network is down (retry later; journaled payments wait), the
session expired (open a new one, done here transparently), or the gateway refused (its
message, in words, is shown).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from protocol.pin import DongleKey
from tvapp.services.device_key import registered_key
from tvapp.services.errors import (
    GatewayRefused,
    GatewayUnavailable,
    MalformedAnswer,
    SessionExpired,
)
from tvapp.services.records import (
    Account,
    Bill,
    CreatedPayment,
    CreditingAnswer,
    FundingSource,
    Household,
    PaymentRecord,
    Processing,
    Receipt,
    Usage,
)

log = logging.getLogger("tvapp.gateway")
# (connect, read): a dead gateway is noticed within seconds; the UI shows progress meanwhile.
DEFAULT_TIMEOUT = (3.05, 10.0)


class Gateway:
    def __init__(
        self,
        base_url: str,
        *,
        ca_file: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.timeout = timeout
        self.token: str | None = None
        # The identity the dongle signed for the device session: a payment must name the same.
        self.gateway_id: str | None = None
        self._http = requests.Session()
        # After a network outage the pooled keep-alive connections are dead; the first request
        # on one fails at once. One quick retry hides that. Safe for every call we make: GETs,
        # payment creation (Idempotency-Key) and authorization (replays the same receipt).
        retry = Retry(
            total=2, connect=2, read=1, status=0, backoff_factor=0.1, allowed_methods=None
        )
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        # Passed with every request, not set on the session: requests lets REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE override a session's ``verify`` (merge_environment_settings), which
        # would trust whatever bundle the environment names instead of the configured CA.
        # trust_env stays on: it also carries the proxy settings an operator's network needs.
        self._verify: str | bool = ca_file or True
        self._http.headers["User-Agent"] = "tvpay-tv/1"

    def close(self) -> None:
        self._http.close()

    # -- plumbing --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        all_headers = dict(headers or {})
        if auth:
            if self.token is None:
                raise SessionExpired(401, "unauthenticated", "no device session yet")
            all_headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                headers=all_headers,
                timeout=self.timeout,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            # Not "network down": retrying will not help until the CA is fixed.
            raise GatewayRefused(
                0, "tls_error", f"the gateway's certificate is not trusted ({exc}); check ca_file"
            ) from None
        except requests.RequestException as exc:
            log.info("event=gateway_unreachable path=%s error=%s", path, type(exc).__name__)
            raise GatewayUnavailable(
                f"the payment gateway cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code >= 500:
            code, _message = _error(response)
            raise GatewayUnavailable(
                f"the payment gateway is unavailable (HTTP {response.status_code})",
                code if code != "unexpected" else "",
            )
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            raise GatewayUnavailable("the payment gateway sent a non-JSON answer") from None
        if response.status_code >= 400:
            code, message = _error(response)
            kind = (
                SessionExpired
                if response.status_code == 401 and code == "unauthenticated"
                else GatewayRefused
            )
            raise kind(response.status_code, code, message)
        return data

    # -- device session --------------------------------------------------------------------

    def session_challenge(self, dongle_id: str) -> tuple[bytes, str, int]:
        """(challenge, gateway_id, timestamp) for the dongle to sign."""
        data = self._call(
            "POST", "/device-sessions/challenge", body={"dongle_id": dongle_id}, auth=False
        )
        try:
            challenge = base64.b64decode(data["challenge"], validate=True)
            gateway_id, timestamp = data["gateway_id"], data["timestamp"]
        except (KeyError, TypeError, ValueError):
            raise MalformedAnswer("session challenge") from None
        if not isinstance(gateway_id, str) or not isinstance(timestamp, int):
            raise MalformedAnswer("session challenge")
        self.gateway_id = gateway_id
        return challenge, gateway_id, timestamp

    def open_session(
        self, dongle_id: str, key_rev: int, challenge: bytes, timestamp: int, signature: bytes
    ) -> tuple[Household, DongleKey]:
        """The household, and the dongle's payment key as the gateway registered it."""
        data = self._call(
            "POST",
            "/device-sessions",
            body={
                "dongle_id": dongle_id,
                "key_rev": key_rev,
                "challenge": base64.b64encode(challenge).decode(),
                "timestamp": timestamp,
                "signature": base64.b64encode(signature).decode(),
            },
            auth=False,
        )
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise MalformedAnswer("session token")
        self.token = token
        return Household.from_json(data.get("household")), registered_key(data, dongle_id)

    # -- household -------------------------------------------------------------------------

    def household(self) -> Household:
        return Household.from_json(self._call("GET", "/household"))

    def accounts(self) -> list[Account]:
        return [Account.from_json(a) for a in _list(self._call("GET", "/accounts"), "accounts")]

    def bind_account(
        self, utility: str, account_no: str, *, bind_code: str = "", holder_name: str = ""
    ) -> Account:
        """Bind with the bill's 6-digit code, or (accounts without one) the holder's name."""
        proof = {"bind_code": bind_code} if bind_code else {"holder_name": holder_name}
        body = {"utility": utility, "account_no": account_no, **proof}
        return Account.from_json(self._call("POST", "/accounts", body=body))

    def bills(self, account_id: str) -> list[Bill]:
        data = self._call("GET", f"/accounts/{_segment(account_id)}/bills")
        return [Bill.from_json(b) for b in _list(data, "bills")]

    def usage(self, account_id: str) -> Usage:
        return Usage.from_json(self._call("GET", f"/accounts/{_segment(account_id)}/usage"))

    def payments(self, limit: int = 50) -> list[PaymentRecord]:
        data = self._call("GET", "/payments", params={"limit": limit})
        return [PaymentRecord.from_json(p) for p in _list(data, "payments")]

    def payment(self, payment_id: str) -> PaymentRecord:
        return PaymentRecord.from_json(self._call("GET", f"/payments/{_segment(payment_id)}"))

    # -- payments --------------------------------------------------------------------------

    def create_payment(
        self,
        idempotency_key: str,
        bill_id: str,
        amount_fen: int,
        currency: str,
        funding_source: str | None = None,
    ) -> CreatedPayment:
        """``funding_source`` None: the household's default way to pay."""
        body: dict[str, Any] = {"bill_id": bill_id, "amount_fen": amount_fen, "currency": currency}
        if funding_source is not None:
            body["funding_source"] = funding_source
        data = self._call(
            "POST", "/payments", body=body, headers={"Idempotency-Key": idempotency_key}
        )
        return CreatedPayment.from_json(data)

    def authorize(self, payment_id: str, authorization: dict[str, Any]) -> Receipt | Processing:
        """Submit a signed authorization; safe to repeat (the gateway replays the receipt, or
        answers ``Processing`` again while the bank has not answered a card payment)."""
        data = self._call(
            "POST", f"/payments/{_segment(payment_id)}/authorize", body=authorization, auth=False
        )
        if isinstance(data, dict) and data.get("status") == "processing":
            return Processing.from_json(data)
        receipt = data.get("receipt") if isinstance(data, dict) else None
        return Receipt.from_json(receipt)

    def funding_sources(self) -> list[FundingSource]:
        data = self._call("GET", "/funding-sources")
        return [FundingSource.from_json(f) for f in _list(data, "funding_sources")]

    def crediting_check(self, payment_id: str) -> CreditingAnswer:
        """查询到账: the gateway asks the utility now whether it credited the payment."""
        path = f"/payments/{_segment(payment_id)}/crediting-check"
        return CreditingAnswer.from_json(self._call("POST", path))


def _error(response: requests.Response) -> tuple[str, str]:
    """The documented error's (code, message), or ("unexpected", a generic message)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(code, str) or not isinstance(message, str):
        return "unexpected", f"the gateway refused (HTTP {response.status_code})"
    return code, message


def _list(data: Any, key: str) -> list:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise MalformedAnswer(key)
    return value


def _segment(identifier: str) -> str:
    """Ids go into URL paths: refuse anything but the documented id characters."""
    if (
        not identifier
        or len(identifier) > 64
        or not all(c.isalnum() or c == "_" for c in identifier)
    ):
        raise MalformedAnswer(f"identifier {identifier[:16]!r}")
    return identifier
