"""The gateway's staff API (docs/gateway.md §1.7) as typed calls.

One ``StaffGateway`` per thread: it owns a ``requests.Session``, which is not thread-safe.
Bytes travel as padded base64 in JSON; every failure becomes a GatewayProblem whose message
tells the staff member what to do.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from dongle.staff.errors import GatewayProblem, GatewayRefused, GatewayUnreachable
from protocol.pki import Attestation

API = "/api/v1/staff"


@dataclass(frozen=True, slots=True)
class Registration:
    dongle_id: str
    key_rev: int
    status: str
    certificate: bytes  # DER, issued by the operator CA


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge: bytes
    gateway_id: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class DongleRecord:
    """What the gateway's registry says about one dongle."""

    dongle_id: str
    key_rev: int
    status: str  # pending | active | revoked
    household_no: str
    revoke_reason: str | None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise GatewayProblem(f"the gateway sent no {what}: check the gateway version")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise GatewayProblem(
            f"the gateway sent a malformed {what}: check the gateway version"
        ) from None


class StaffGateway:
    def __init__(
        self, url: str, token: str, *, ca_file: str | None = None, timeout: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        # Passed with each request: requests lets REQUESTS_CA_BUNDLE override a Session's own
        # ``verify``, which would silently ignore --ca-file.
        self._verify: str | bool = ca_file or True

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> StaffGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._session.request(
                method,
                self.url + API + path,
                json=body if method == "POST" else None,
                timeout=self._timeout,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            raise GatewayUnreachable(
                f"TLS to the gateway at {self.url} failed ({_reason(exc)}): "
                "check --ca-file points at the gateway's CA certificate"
            ) from None
        except requests.RequestException as exc:
            raise GatewayUnreachable(
                f"the gateway at {self.url} is unreachable ({_reason(exc)}): "
                "check the network and --gateway, then rerun"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.ok and isinstance(data, dict):
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            raise GatewayProblem(
                f"the gateway at {self.url} answered HTTP {response.status_code} without "
                "details: check --gateway points at a TVPay gateway"
            )
        code = str(error.get("code", "error"))
        message = str(error.get("message", "")) or f"request refused ({code})"
        if response.status_code == 401:
            message = (
                f"the gateway refused the staff token ({message}): get a valid one with "
                "'tvpay-gateway staff add NAME'"
            )
        raise GatewayRefused(message, code, response.status_code)

    def household(self, household_no: str) -> dict[str, Any]:
        return self._call("GET", f"/households/{quote(household_no, safe='')}")

    def attestation_nonce(self) -> bytes:
        return unb64(self._call("POST", "/attestation-nonce", {}).get("nonce"), "nonce")

    def register(
        self, household_no: str, attestation: Attestation, role: str = "home"
    ) -> Registration:
        """Register the dongle's key for ``household_no``; the gateway refuses a ``role`` (home
        or shop) that is not the household's kind."""
        body = {
            "household_no": household_no,
            "attestation": attestation_json(attestation),
            "role": role,
        }
        data = self._call("POST", "/dongles", body)
        return Registration(
            dongle_id=str(data.get("dongle_id")),
            key_rev=_int(data.get("key_rev")),
            status=str(data.get("status")),
            certificate=unb64(data.get("certificate"), "device certificate"),
        )

    def activation_challenge(self, dongle_id: str) -> Challenge:
        data = self._call("POST", f"/dongles/{quote(dongle_id, safe='')}/activation-challenge", {})
        return Challenge(
            challenge=unb64(data.get("challenge"), "activation challenge"),
            gateway_id=str(data.get("gateway_id")),
            timestamp=_int(data.get("timestamp")),
        )

    def activate(
        self, dongle_id: str, key_rev: int, challenge: Challenge, signature: bytes
    ) -> DongleRecord:
        data = self._call(
            "POST",
            f"/dongles/{quote(dongle_id, safe='')}/activate",
            {
                "key_rev": key_rev,
                "challenge": b64(challenge.challenge),
                "timestamp": challenge.timestamp,
                "signature": b64(signature),
            },
        )
        return _record(data)

    def revoke(self, dongle_id: str, reason: str) -> DongleRecord:
        data = self._call(
            "POST", f"/dongles/{quote(dongle_id, safe='')}/revoke", {"reason": reason}
        )
        return _record(data)

    def dongles(self, *, status: str, household_no: str) -> list[DongleRecord]:
        query = f"/dongles?status={quote(status)}&household_no={quote(household_no)}"
        entries = self._call("GET", query).get("dongles")
        if not isinstance(entries, list):
            raise GatewayProblem("the gateway sent a malformed dongle list: check its version")
        return [_record(e) for e in entries if isinstance(e, dict)]

    def dongle(self, dongle_id: str) -> DongleRecord | None:
        """The registry entry of a dongle, or None when the gateway has never seen it."""
        try:
            return _record(self._call("GET", f"/dongles/{quote(dongle_id, safe='')}"))
        except GatewayRefused as exc:
            if exc.status == 404:
                return None
            raise


def attestation_json(attestation: Attestation) -> dict[str, Any]:
    return {
        "dongle_id": attestation.dongle_id,
        "key_rev": attestation.key_rev,
        "public_key": b64(attestation.public_key),
        "nonce": b64(attestation.nonce),
        "signature": b64(attestation.signature),
        "certificates": [b64(der) for der in attestation.certificates],
    }


def _record(data: dict[str, Any]) -> DongleRecord:
    reason = data.get("revoke_reason")
    return DongleRecord(
        dongle_id=str(data.get("dongle_id")),
        key_rev=_int(data.get("key_rev")),
        status=str(data.get("status")),
        household_no=str(data.get("household_no")),
        revoke_reason=reason if isinstance(reason, str) else None,
    )


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise GatewayProblem("the gateway sent a malformed number: check the gateway version")
    return value


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, short enough for one line."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(inner) or type(inner).__name__
    return text if len(text) < 120 else text[:117] + "..."
