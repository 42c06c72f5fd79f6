"""The vending side's simulated HSM for card meters: the billers' master keys (derived from the
``vending.key`` secret), purchase-card authentication, and the check that a card can take the
next purchase before the household types its PIN (docs/prepaid.md).

A card is only ever believed through its MACs: the purchase record's MAC covers the issuer file,
so a changed serial, meter number or count fails, and the write-back's MAC is the meter's word
for what it took. Card keys exist only inside a request, derived from the master key and the
card's serial, never stored and never sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import PrepaidMeter, UtilityAccount
from gateway.errors import Conflict, Unprocessable
from gateway.masking import mask_account
from protocol import card as cardfmt


@dataclass(frozen=True, slots=True)
class AuthenticCard:
    """A card read whose MACs verified with the key of ``meter``'s biller."""

    meter: PrepaidMeter
    issuer: cardfmt.IssuerFile
    record: cardfmt.PurchaseRecord
    writeback: cardfmt.WriteBack | None  # None: empty (the meter has not written back since)
    card_key: bytes


def card_key_for(secret: bytes, biller_code: str, serial: bytes) -> bytes:
    """K_c of one card: the biller's master key diversified by the card's serial."""
    return cardfmt.card_key(cardfmt.vending_master_key(secret, biller_code), serial)


def _not_authentic(why: str) -> Unprocessable:
    return Unprocessable(
        f"This purchase card failed the authenticity check ({why}): it may be damaged or not "
        "issued by the utility. Take it to the utility's service counter.",
        code="card_not_authentic",
    )


def _parse(card: cardfmt.CardRead) -> tuple[cardfmt.IssuerFile, cardfmt.PurchaseRecord]:
    try:
        return cardfmt.IssuerFile.parse(card.issuer), cardfmt.PurchaseRecord.parse(card.purchase)
    except cardfmt.CardError as exc:
        raise _not_authentic(f"unreadable: {exc}") from None


def _verified(
    meter: PrepaidMeter, biller_code: str, card: cardfmt.CardRead, secret: bytes
) -> AuthenticCard:
    issuer, record = _parse(card)
    key = card_key_for(secret, biller_code, issuer.serial)
    if not record.verify(key, issuer):
        raise _not_authentic("the purchase record's MAC does not match")
    try:
        writeback = cardfmt.WriteBack.parse(card.writeback)
    except cardfmt.CardError as exc:
        raise _not_authentic(f"unreadable write-back: {exc}") from None
    if not writeback.verify(key, issuer):
        raise _not_authentic("the meter's write-back MAC does not match")
    return AuthenticCard(meter, issuer, record, writeback if writeback.full else None, key)


def authenticate(
    meter: PrepaidMeter, biller_code: str, card: cardfmt.CardRead, secret: bytes
) -> AuthenticCard:
    """The card, verified as a card of ``meter``; 422 ``card_not_authentic`` or
    ``card_wrong_meter`` otherwise."""
    issuer, _record = _parse(card)
    if issuer.biller_hash != cardfmt.biller_hash(biller_code):
        raise Unprocessable(
            "This purchase card was issued for another utility's meter: insert the card of "
            f"meter {mask_account(meter.meter_no)}.",
            code="card_wrong_meter",
        )
    seen = _verified(meter, biller_code, card, secret)
    if issuer.meter_no != meter.meter_no:
        raise Unprocessable(
            f"This purchase card belongs to meter {mask_account(issuer.meter_no)}, not meter "
            f"{mask_account(meter.meter_no)}: insert that meter's card.",
            code="card_wrong_meter",
        )
    if meter.card_serial is not None and issuer.serial.hex() != meter.card_serial.lower():
        raise Unprocessable(
            f"This purchase card is not the card registered for meter "
            f"{mask_account(meter.meter_no)}: use the registered card, or ask the utility's "
            "counter to register this one.",
            code="card_wrong_meter",
        )
    return seen


def identify(session: Session, card: cardfmt.CardRead, secret: bytes) -> AuthenticCard:
    """The card meter a card names, found from the card's own (verified) data and locked for
    this transaction, so two boxes showing the same card take turns."""
    issuer, _record = _parse(card)
    candidates = session.execute(
        select(PrepaidMeter.id, UtilityAccount.biller_code)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .where(PrepaidMeter.meter_no == issuer.meter_no, PrepaidMeter.kind == "card")
    ).all()
    for meter_id, biller_code in candidates:
        if issuer.biller_hash == cardfmt.biller_hash(biller_code):
            meter = session.get(PrepaidMeter, meter_id, with_for_update=True)
            assert meter is not None  # just selected; meters are never deleted
            return authenticate(meter, biller_code, card, secret)
    raise Unprocessable(
        f"This purchase card is for meter {mask_account(issuer.meter_no)}, which is not a card "
        "meter known here: the household must bind that meter's account first.",
        code="card_unknown_meter",
    )


def readiness_problem(seen: AuthenticCard) -> str | None:
    """Why the card cannot take purchase N+1 now (a sentence for the household), or None.

    Writing N+1 over a purchase N the meter has not taken yet would lose N, and writing it
    over the write-back before anyone read it would lose the meter's report."""
    count, meter = seen.record.count, seen.meter
    # A higher count than ours is fine (purchases made at the utility's counter, or before the
    # meter was registered here); a lower one is an old card whose next count the meter has.
    if count < meter.card_count:
        return (
            f"This card shows purchase {count}, but purchase {meter.card_count} was already "
            "written to this meter's card: use the meter's latest card."
        )
    if count == 0:
        return None  # a fresh card: nothing the meter could still have to take
    if seen.writeback is None:
        return (
            f"The meter has not taken purchase {count} from this card yet: insert the card "
            "in the meter first, then try again."
        )
    if seen.writeback.meter_count != count:
        return (
            f"The meter reports purchase {seen.writeback.meter_count} but the card holds "
            f"{count}: insert the card in the meter again; if the meter refuses it, take it "
            "to the utility's service counter."
        )
    return None


def check_card_ready(
    session: Session, meter: PrepaidMeter, card: cardfmt.CardRead, secret: bytes
) -> None:
    """Before the PIN: the card is authentic, belongs to ``meter`` and can take the next
    purchase; 422 ``card_not_authentic`` / ``card_wrong_meter`` or 409 ``card_not_ready``."""
    account = session.get(UtilityAccount, meter.account_id)
    assert account is not None  # foreign key
    problem = readiness_problem(authenticate(meter, account.biller_code, card, secret))
    if problem is not None:
        raise Conflict(problem, code="card_not_ready")
