"""The virtual purchase card (购电卡): a CPU card with three files, driven by APDUs."""

from emulator.card.image import CardImageError, CardImageExists
from emulator.card.issue import issue_card
from emulator.card.virtual import VirtualPurchaseCard

__all__ = ["CardImageError", "CardImageExists", "VirtualPurchaseCard", "issue_card"]
