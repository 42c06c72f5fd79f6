"""The utility's HTTP API as the gateway calls it: ``POST {notify_url}/writeoffs`` and
``GET {notify_url}/writeoffs/{payment_id}``. Whatever the utility answers, the caller gets a
``UtilityAnswer`` or a ``DeliveryError`` saying what went wrong: never a parser's traceback."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

from gateway.writeoff import SIGNATURE_HEADER, UtilityAnswer

MAX_ANSWER = 64 * 1024  # an acknowledgement is a few hundred bytes
_TOKEN = re.compile(r"^[\x21-\x7e]{1,64}$")
_REASON = re.compile(r"^[a-z0-9_]{1,64}$")


class DeliveryError(Exception):
    """The utility could not be reached or gave no usable answer; the message is retried."""


class UtilityUnreachable(DeliveryError):
    """No answer: connection refused or dropped, or the timeout passed."""


class UtilityRefused(DeliveryError):
    """The utility answered with an error status (down, signature refused, …)."""


class UtilityAnswerInvalid(DeliveryError):
    """The utility answered 200 with something that is not an acknowledgement of this payment."""


def _read(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(8192):
        body += chunk
        if len(body) > MAX_ANSWER:
            raise UtilityAnswerInvalid(f"the answer is longer than {MAX_ANSWER} bytes")
    return bytes(body)


def _request(method: str, url: str, timeout: float, **kwargs: Any) -> tuple[int, bytes]:
    try:
        with requests.request(method, url, timeout=timeout, stream=True, **kwargs) as response:
            return response.status_code, _read(response)
    except requests.Timeout:
        raise UtilityUnreachable(f"no answer from {url} within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise UtilityUnreachable(f"cannot reach {url} ({type(exc).__name__})") from None


def parse_answer(raw: bytes, payment_id: str) -> UtilityAnswer:
    """An acknowledgement ``{"status": "credited", "utility_ref"}`` or a rejection
    ``{"status": "rejected", "reason"}``; a ``payment_id`` in it must be this payment's."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise UtilityAnswerInvalid("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise UtilityAnswerInvalid("the answer is not a JSON object")
    if "payment_id" in data and data["payment_id"] != payment_id:
        raise UtilityAnswerInvalid(
            f"the answer is about payment {str(data['payment_id'])[:64]!r}, not {payment_id}"
        )
    status, ref, reason = data.get("status"), data.get("utility_ref"), data.get("reason")
    if status == "credited":
        if not isinstance(ref, str) or not _TOKEN.match(ref):
            raise UtilityAnswerInvalid("a credited answer needs a utility_ref of 1-64 characters")
        return UtilityAnswer("credited", utility_ref=ref)
    if status == "rejected":
        if not isinstance(reason, str) or not _REASON.match(reason):
            raise UtilityAnswerInvalid("a rejected answer needs a reason such as account_closed")
        return UtilityAnswer("rejected", reason=reason)
    raise UtilityAnswerInvalid(f"unknown answer status {str(status)[:32]!r}")


def notify(url: str, payment_id: str, body: bytes, signature: str, timeout: float) -> UtilityAnswer:
    """Send one signed write-off notification and return the utility's answer."""
    target = url.rstrip("/") + "/writeoffs"
    status, raw = _request(
        "POST",
        target,
        timeout,
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    )
    if status != 200:
        raise UtilityRefused(f"{target} answered HTTP {status}")
    return parse_answer(raw, payment_id)


def ask(url: str, payment_id: str, timeout: float) -> UtilityAnswer:
    """What the utility knows of ``payment_id`` now (status ``unknown`` when nothing yet)."""
    target = f"{url.rstrip('/')}/writeoffs/{payment_id}"
    status, raw = _request("GET", target, timeout)
    if status == 404:
        return UtilityAnswer("unknown")
    if status != 200:
        raise UtilityRefused(f"{target} answered HTTP {status}")
    return parse_answer(raw, payment_id)
