"""The dongle's persistent state: everything that must survive a power cut, as one immutable record.

Commands build a new record and commit it; the old one stays valid until the store has the new one,
which makes "nothing changed" trivially true when a write fails.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from protocol.messages import Lifecycle
from protocol.pin import PIN_RETRIES, PUK_RETRIES

SIGN_CACHE_SIZE = 32  # docs/protocol.md §4.4


class StateRecordError(ValueError):
    """A stored record does not have the shape of a dongle state."""


@dataclass(frozen=True, slots=True)
class SignedPayment:
    """One entry of the idempotent-signing cache."""

    payment_id: str
    fields_digest: bytes  # SHA-256 of the canonical CBOR of the request fields
    counter: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class DongleState:
    serial: str
    attestation_key: bytes  # P-256 private scalar, 32 bytes
    attestation_cert: bytes  # DER, issued by the manufacturer CA
    key_rev: int = 0
    counter: int = 0
    payment_key: bytes | None = None  # P-256 private scalar; never leaves the dongle
    certificate: bytes | None = None  # device certificate written by the operator
    pin_hash: bytes | None = None
    puk_hash: bytes | None = None
    pin_retries: int = PIN_RETRIES
    puk_retries: int = PUK_RETRIES
    locked: bool = False
    signed: tuple[SignedPayment, ...] = ()

    @property
    def lifecycle(self) -> Lifecycle:
        if self.payment_key is None:
            return Lifecycle.FACTORY
        if self.certificate is None:
            return Lifecycle.KEY_GENERATED
        if self.pin_hash is not None and self.pin_retries == 0:
            return Lifecycle.PIN_BLOCKED
        return Lifecycle.LOCKED if self.locked else Lifecycle.CERTIFIED

    def to_record(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["signed"] = [
            [s.payment_id, s.fields_digest, s.counter, s.signature] for s in self.signed
        ]
        return record

    @classmethod
    def from_record(cls, record: Any) -> DongleState:
        if not isinstance(record, dict) or set(record) != {f.name for f in fields(cls)}:
            raise StateRecordError("dongle state record has missing or unknown fields")
        try:
            signed = tuple(
                SignedPayment(str(p), bytes(d), int(c), bytes(s)) for p, d, c, s in record["signed"]
            )
        except (TypeError, ValueError):
            raise StateRecordError("dongle state record has a malformed signing cache") from None
        state = cls(**{**record, "signed": signed})
        _check_types(state)
        return state


_TYPES: dict[str, tuple[type, ...]] = {
    "serial": (str,),
    "attestation_key": (bytes,),
    "attestation_cert": (bytes,),
    "key_rev": (int,),
    "counter": (int,),
    "payment_key": (bytes, type(None)),
    "certificate": (bytes, type(None)),
    "pin_hash": (bytes, type(None)),
    "puk_hash": (bytes, type(None)),
    "pin_retries": (int,),
    "puk_retries": (int,),
    "locked": (bool,),
}


def _check_types(state: DongleState) -> None:
    for name, types in _TYPES.items():
        if not isinstance(getattr(state, name), types):
            raise StateRecordError(f"dongle state field {name} has the wrong type")
