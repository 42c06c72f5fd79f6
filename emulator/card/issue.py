"""Personalisation: turn a blank card into a biller's purchase card for one meter."""

from __future__ import annotations

from pathlib import Path

from emulator.card.image import CardImage, create_image
from emulator.card.virtual import VirtualPurchaseCard
from protocol.card import IssuerFile, PurchaseRecord, WriteBack, biller_hash, card_key


def issue_card(
    *, serial: bytes, biller: str, meter_no: str, master: bytes, path: Path | None
) -> VirtualPurchaseCard:
    """A fresh card: issuer file for ``biller``/``meter_no``, the card key diversified from the
    biller's vending master key, purchase count 0 (signed) and an empty write-back. With a
    ``path`` the card is kept in that file (CardImageExists if one is already there).

    Raises protocol.card.CardError for a malformed serial, meter number or key."""
    key = card_key(master, serial)
    issuer = IssuerFile(serial=serial, biller_hash=biller_hash(biller), meter_no=meter_no)
    image = CardImage(
        serial=serial,
        card_key=key,
        files=(
            issuer.to_bytes(),
            PurchaseRecord.blank().sign(key, issuer).to_bytes(),
            WriteBack.EMPTY.to_bytes(),
        ),
    )
    if path is not None:
        create_image(path, image)
    return VirtualPurchaseCard(image, path)
