"""STS tokens (IEC 62055-41) for keypad meters, issued once per paid purchase.

The vending key of a supply group is derived from the gateway's vending secret, so no key is
stored in the database: ``HKDF-SHA256(secret, info="TVPAY/STS/" + SGC)[:8]``; the meter's
decoder key comes from it by DKGA02 (protocol.sts). Token identifiers (TIDs) grow strictly per
meter, under the meter's row lock, and are unique per meter in the database: a meter refuses a
TID it has seen, so a TID reused would be a token paid for and never accepted.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

from gateway.db.models import PrepaidMeter, Purchase
from gateway.writeoff import queue_fulfilled
from protocol.sts import MeterIdentity, credit_token, derive_decoder_key, tid_at, units_from_wh
from protocol.sts.identity import LEGACY_IIN, SHORT_IIN

VENDING_KEY_SIZE = 8


def vending_key(secret: bytes, sgc: int) -> bytes:
    """The supply group's vending key (the HSM's, never stored)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=VENDING_KEY_SIZE,
        salt=None,
        info=b"TVPAY/STS/" + str(sgc).encode(),
    ).derive(secret)


def identity(meter: PrepaidMeter) -> MeterIdentity:
    """The meter's STS identity as registered (``tvpay-gateway prepaid meter add``)."""
    assert meter.sts_sgc is not None and meter.sts_ti is not None and meter.sts_krn is not None
    iin = LEGACY_IIN if len(meter.meter_no) == 11 else SHORT_IIN
    return MeterIdentity(
        drn=meter.meter_no, sgc=meter.sts_sgc, ti=meter.sts_ti, krn=meter.sts_krn, iin=iin
    )


def decoder_key(secret: bytes, meter: PrepaidMeter) -> bytes:
    """The meter's decoder key (DKGA02 from its supply group's vending key): what the meter
    holds and what its tokens are encrypted with."""
    sts_meter = identity(meter)
    return derive_decoder_key(vending_key=vending_key(secret, sts_meter.sgc), meter=sts_meter)


def issue_token(
    session: Session, purchase: Purchase, meter: PrepaidMeter, secret: bytes, now: int
) -> None:
    """Generate the purchase's token once: the caller holds the purchase's and the meter's row
    locks and has checked the payment took the money. The utility hears of the sale now."""
    tid = max(tid_at(now), meter.last_tid + 1)
    purchase.token = credit_token(
        decoder_key=decoder_key(secret, meter),
        tid=tid,
        units=units_from_wh(purchase.energy_wh),
        rnd=secrets.randbelow(16),
    )
    purchase.tid, meter.last_tid = tid, tid
    purchase.fulfilment, purchase.fulfilled_at = "done", now
    queue_fulfilled(session, purchase, now)
