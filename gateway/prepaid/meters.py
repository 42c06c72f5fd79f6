"""Prepaid meters: registering one on a utility account (staff, command line), and what a
household sees of its meters — rules, last known balance, days left, a pending purchase."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.clock import iso
from gateway.db.engine import Database
from gateway.db.models import Biller, PrepaidMeter, Purchase, UtilityAccount
from gateway.errors import GatewayError, NotFound
from gateway.ids import new_id
from gateway.masking import mask_account
from gateway.prepaid.remote import RemoteBalance, RemoteBalanceError, fetch_balance
from gateway.prepaid.rules import CURRENCY, Rules, load_rules
from gateway.prepaid.tokens import identity
from gateway.views import biller_view
from protocol.sts import TokenError

log = logging.getLogger("tvpay.gateway.prepaid")

KINDS = ("remote", "card", "token")
LOW_DAYS = 7
LOW_BALANCE_FEN = 2000
_REMOTE_NO = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_CARD_NO = re.compile(r"^[0-9]{12}$")  # as the card's issuer file holds it
_SERIAL = re.compile(r"^[0-9a-f]{16}$")


class MeterError(GatewayError):
    """A meter that cannot be registered as given; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class StsIdentity:
    sgc: int
    ti: int
    krn: int


@dataclass(frozen=True, slots=True)
class MeterRow:
    meter: PrepaidMeter
    account: UtilityAccount
    biller: Biller


def add_meter(
    session: Session,
    utility: str,
    account_no: str,
    kind: str,
    meter_no: str,
    card_serial: str | None = None,
    sts: StsIdentity | None = None,
    now: int = 0,
) -> PrepaidMeter:
    """Register the prepaid meter of an account; its biller must have prepaid rules."""
    account = session.scalar(
        select(UtilityAccount).where(
            UtilityAccount.utility == utility, UtilityAccount.account_no == account_no
        )
    )
    if account is None:
        raise MeterError(f"no {utility} account {account_no}; import the utility's accounts first")
    if session.scalar(select(PrepaidMeter.id).where(PrepaidMeter.account_id == account.id)):
        raise MeterError(f"account {account_no} already has a prepaid meter")
    try:
        load_rules(session, account.biller_code)
    except GatewayError:
        raise MeterError(
            f"{account.biller_code} has no prepaid rules; run 'tvpay-gateway prepaid rules set "
            f"{account.biller_code}' first"
        ) from None
    meter = PrepaidMeter(
        id=new_id("mtr"), account_id=account.id, kind=kind, meter_no=meter_no, created_at=now
    )
    _describe(meter, card_serial, sts)
    session.add(meter)
    session.flush()
    return meter


def _describe(meter: PrepaidMeter, card_serial: str | None, sts: StsIdentity | None) -> None:
    """Check what each kind of meter needs and nothing it does not."""
    if meter.kind not in KINDS:
        raise MeterError(f"a meter kind is one of {', '.join(KINDS)}, not {meter.kind!r}")
    if (card_serial is not None) != (meter.kind == "card"):
        raise MeterError("a card meter needs --card-serial, and only a card meter takes one")
    if (sts is not None) != (meter.kind == "token"):
        raise MeterError("a token meter needs --sgc, --ti and --krn, and only a token meter")
    if meter.kind == "remote" and not _REMOTE_NO.match(meter.meter_no):
        raise MeterError("a meter number is 1..32 letters, digits or '-'")
    if meter.kind == "card":
        assert card_serial is not None
        if not _CARD_NO.match(meter.meter_no):
            raise MeterError("a card meter's number is the 12 digits printed on the meter")
        if not _SERIAL.match(card_serial.lower()):
            raise MeterError("the card serial is 16 hex digits (8 bytes), as read from the card")
        meter.card_serial = card_serial.lower()
    if meter.kind == "token":
        assert sts is not None
        meter.sts_sgc, meter.sts_ti, meter.sts_krn = sts.sgc, sts.ti, sts.krn
        try:
            identity(meter)
        except TokenError as exc:
            raise MeterError(str(exc)) from None


def list_meters(session: Session, biller: str | None = None) -> list[MeterRow]:
    """Every registered meter (for staff), by biller and account number."""
    query = (
        select(PrepaidMeter, UtilityAccount, Biller)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .order_by(Biller.code, UtilityAccount.account_no)
    )
    if biller is not None:
        query = query.where(Biller.code == biller)
    return [MeterRow(m, a, b) for m, a, b in session.execute(query)]


def household_meters(session: Session, household_id: int) -> list[MeterRow]:
    rows = session.execute(
        select(PrepaidMeter, UtilityAccount, Biller)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(UtilityAccount.household_id == household_id)
        .order_by(UtilityAccount.bound_at, PrepaidMeter.id)
    )
    return [MeterRow(m, a, b) for m, a, b in rows]


def find_meter(
    session: Session, household_id: int, meter_id: str, *, lock: bool = False
) -> MeterRow:
    """A meter on an account bound to this household; with ``lock``, its row locked (purchases
    on one meter are made one at a time)."""
    row = session.execute(
        select(PrepaidMeter, UtilityAccount, Biller)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(PrepaidMeter.id == meter_id, UtilityAccount.household_id == household_id)
    ).first()
    if row is None:
        raise NotFound(
            "No such meter on this household's accounts; refresh the meter list.",
            code="meter_not_found",
        )
    if lock:
        session.refresh(row[0], with_for_update=True)
    return MeterRow(*row)


def year_usage_wh(session: Session, meter: PrepaidMeter, now: int) -> int:
    """This calendar year's usage for the tiered tariff: the energy bought for the meter this
    year and paid for (a prepaid household uses what it buys)."""
    year_start = datetime(datetime.fromtimestamp(now, UTC).year, 1, 1, tzinfo=UTC)
    total = session.scalar(
        select(func.coalesce(func.sum(Purchase.energy_wh), 0)).where(
            Purchase.meter_id == meter.id,
            Purchase.fulfilment.in_(("pending", "done")),
            Purchase.created_at >= int(year_start.timestamp()),
        )
    )
    return int(total or 0)


def pending_purchase_id(session: Session, meter: PrepaidMeter) -> str | None:
    return session.scalar(
        select(Purchase.id).where(Purchase.meter_id == meter.id, Purchase.fulfilment == "pending")
    )


def remember_balance(session: Session, meter_id: str, answer: RemoteBalance) -> None:
    """Keep the utility's last answer: shown when the utility does not answer next time."""
    meter = session.get(PrepaidMeter, meter_id, with_for_update=True)
    if meter is not None and (meter.last_balance_at or 0) <= answer.as_of:
        meter.last_balance_fen, meter.last_balance_at = answer.balance_fen, answer.as_of


def balance_view(meter: PrepaidMeter, fresh: RemoteBalance | None) -> dict[str, Any] | None:
    """The balance as the TV shows it, with days left and the low-balance flag."""
    if fresh is not None:
        amount, as_of, days_left = fresh.balance_fen, fresh.as_of, fresh.days_left()
    elif meter.kind != "token" and meter.last_balance_fen is not None:
        amount, as_of, days_left = meter.last_balance_fen, meter.last_balance_at, None
    else:
        return None
    low = amount < LOW_BALANCE_FEN or (days_left is not None and days_left <= LOW_DAYS)
    return {"amount_fen": amount, "as_of": iso(as_of), "days_left": days_left, "low": low}


def meter_view(
    row: MeterRow, rules: Rules, balance: dict[str, Any] | None, pending: str | None
) -> dict[str, Any]:
    return {
        "meter_id": row.meter.id,
        "kind": row.meter.kind,
        "biller": biller_view(row.biller),
        "account_no_masked": mask_account(row.account.account_no),
        "meter_no_masked": mask_account(row.meter.meter_no),
        "currency": CURRENCY,
        "rules": rules.to_json(),
        "balance": balance,
        "pending_purchase_id": pending,
    }


def household_meter_list(db: Database, household_id: int) -> list[dict[str, Any]]:
    """The household's meters with balances: remote ones asked of the utility now (outside any
    transaction, short timeout), the last known balance when it does not answer."""

    def load(s: Session) -> list[tuple[MeterRow, Rules, str | None]]:
        return [
            (row, load_rules(s, row.biller.code), pending_purchase_id(s, row.meter))
            for row in household_meters(s, household_id)
        ]

    listed = db.read(load)
    fresh: dict[str, RemoteBalance] = {}
    for row, _rules, _pending in listed:
        if row.meter.kind == "remote" and row.biller.notify_url:
            try:
                fresh[row.meter.id] = fetch_balance(row.biller.notify_url, row.account.account_no)
            except RemoteBalanceError as exc:
                log.info("event=meter_balance_unavailable meter_id=%s why=%s", row.meter.id, exc)
    if fresh:

        def remember(s: Session) -> None:
            for meter_id, answer in fresh.items():
                remember_balance(s, meter_id, answer)

        db.write(remember)
    return [
        meter_view(row, rules, balance_view(row.meter, fresh.get(row.meter.id)), pending)
        for row, rules, pending in listed
    ]
