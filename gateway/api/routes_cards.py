"""Card sessions (device token, any household's or shop's box): what to write on a purchase
card, and the confirmation that it is written (docs/prepaid.md, gateway.prepaid.cards)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.deps import ERRORS, Ctx, Device
from gateway.api.schemas_cards import (
    CardConfirmOut,
    CardConfirmRequest,
    CardSessionOut,
    CardSessionRequest,
)
from gateway.clock import now
from gateway.prepaid.cards import card_session, confirm_card

router = APIRouter(prefix="/api/v1/cards", responses=ERRORS, tags=["cards"])


@router.post("/session", response_model=CardSessionOut, response_model_exclude_none=True)
def session(body: CardSessionRequest, dev: Device, c: Ctx) -> dict[str, Any]:
    card, challenge, secret = (
        body.card.to_card(),
        bytes.fromhex(body.challenge),
        c.keys.vending_secret,
    )
    return c.db.write(lambda s: card_session(s, secret, card, challenge, dev.dongle_id, now()))


@router.post("/confirm", response_model=CardConfirmOut)
def confirm(body: CardConfirmRequest, dev: Device, c: Ctx) -> dict[str, Any]:
    card, secret = body.card.to_card(), c.keys.vending_secret
    return c.db.write(lambda s: confirm_card(s, secret, card, dev.dongle_id, now()))
