"""Shops as staff see them: adding one (audited), listing them with their float and commission,
and the role checks that keep shop dongles and home dongles apart."""

from __future__ import annotations

import re
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.clock import now
from gateway.db.models import Household
from gateway.errors import Conflict, Forbidden, Unprocessable
from gateway.funding.sources import wallet_currency
from gateway.ledger import accounts, balance

Role = Literal["home", "shop"]
SHOP: Role = "shop"
MAX_COMMISSION_BP = 10_000  # a commission is a share of the sale: never more than all of it


_NUMBER = re.compile(r"[A-Za-z0-9-]{1,32}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,200}")  # printable, as the API's Name and Address


def _check_text(shop_no: str, name: str, address: str) -> None:
    """The command line passes these unchecked: refuse what the staff API would refuse."""
    if not _NUMBER.fullmatch(shop_no):
        raise Unprocessable(
            "A shop number is 1-32 letters, digits or '-', like a household number.",
            code="shop_no_invalid",
        )
    if not (_TEXT.fullmatch(name) and len(name) <= 64 and _TEXT.fullmatch(address)):
        raise Unprocessable(
            "The shop's name (1-64 characters) and address (1-200) are printable text.",
            code="shop_invalid",
        )


def add_shop(
    session: Session, actor: str, shop_no: str, name: str, address: str, commission_bp: int
) -> dict[str, Any]:
    """A new household row of kind ``shop``; its float starts empty (staff top it up with the
    audited wallet credit)."""
    _check_text(shop_no, name, address)
    if type(commission_bp) is not int or not 0 <= commission_bp <= MAX_COMMISSION_BP:
        raise Unprocessable(
            f"A commission is 0-{MAX_COMMISSION_BP} basis points of each sale (50 = 0.5%).",
            code="commission_invalid",
        )
    if session.scalar(select(Household.id).where(Household.household_no == shop_no)):
        raise Conflict(
            f"Household {shop_no} already exists; give the shop a number of its own.",
            code="household_exists",
        )
    shop = Household(
        household_no=shop_no,
        name=name,
        address=address,
        created_at=now(),
        kind=SHOP,
        commission_bp=commission_bp,
    )
    session.add(shop)
    session.flush()
    audit.record(session, actor, "shop_create", shop_no, commission_bp=commission_bp)
    return shop_view(session, shop)


def shop_view(session: Session, shop: Household) -> dict[str, Any]:
    wallet = accounts.wallet(shop.household_no)
    return {
        "shop_no": shop.household_no,
        "name": shop.name,
        "address": shop.address,
        "commission_bp": shop.commission_bp or 0,
        "float_fen": balance(session, wallet),
        "commission_earned_fen": balance(session, accounts.commission(shop.household_no)),
        "currency": wallet_currency(session, wallet),
    }


def list_shops(session: Session) -> list[dict[str, Any]]:
    shops = session.scalars(
        select(Household).where(Household.kind == SHOP).order_by(Household.household_no)
    )
    return [shop_view(session, shop) for shop in shops]


def require_shop(session: Session, household_id: int) -> Household:
    """The shop behind a device session; 403 ``not_a_shop`` for a home dongle."""
    household = session.get(Household, household_id)
    assert household is not None  # the session's dongle names it
    if household.kind != SHOP:
        raise Forbidden(
            "This dongle belongs to a household, not a shop: only a shop's box sells "
            "electricity to other accounts. Buy for this household's own meters instead.",
            code="not_a_shop",
        )
    return household


def check_role(household: Household, role: Role) -> None:
    """A dongle is registered for the kind of household its role says: a shop's dongle spends
    a float and earns commission, a home's pays one household's bills."""
    if household.kind == role:
        return
    if role == SHOP:
        what = (
            f"household {household.household_no} is a home, not a shop: provision it with "
            "--role home, or add the shop first with 'tvpay-gateway shop add'."
        )
    else:
        what = (
            f"household {household.household_no} is a shop: provision its dongle with --role shop."
        )
    raise Conflict(f"Dongle role {role} does not fit: {what}", code="dongle_role_mismatch")
