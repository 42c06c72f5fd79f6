"""Schemas of the card-session API (docs/prepaid.md): the purchase card as the box read it, and
the vending side's answers. Strict like every request schema: exact shapes, hex of exact sizes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from gateway.api.schemas import ObjectId, Strict
from protocol import card as cardfmt

CardFile = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]  # 32 bytes
CardChallenge = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{16}$")]  # 8 bytes


class CardIn(Strict):
    """The card's three files, read with READ BINARY, as hex."""

    issuer: CardFile
    purchase: CardFile
    writeback: CardFile

    def to_card(self) -> cardfmt.CardRead:
        return cardfmt.CardRead(
            bytes.fromhex(self.issuer), bytes.fromhex(self.purchase), bytes.fromhex(self.writeback)
        )


class CardSessionRequest(Strict):
    card: CardIn
    challenge: CardChallenge  # the card's answer to GET CHALLENGE, just before reading it


class CardConfirmRequest(Strict):
    card: CardIn  # read back after the write-card block ran


class CardSessionOut(BaseModel):
    """``write``: run ``apdus`` on the card in order, read it back, confirm. ``confirm``: the
    card already shows the purchase. ``none``: nothing to write; ``reason`` says why."""

    action: Literal["write", "confirm", "none"]
    purchase_id: ObjectId | None = None
    count: int | None = None
    apdus: list[str] | None = None
    reason: str | None = None


class CardConfirmOut(BaseModel):
    purchase_id: ObjectId
    fulfilment: Literal["done"]
