"""Masking of personal data shown on a TV screen or written to logs."""

from __future__ import annotations

# Two-character family names common enough to mask correctly (欧阳** rather than 欧***).
_COMPOUND_SURNAMES = frozenset(
    {
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
    }
)
# Searched in order: a district or county if there is one, else the city.
_DISTRICT_MARKERS = ("区", "县", "市")


def mask_account(account_no: str) -> str:
    """Keep the last four characters: ``******6789``."""
    if len(account_no) <= 4:
        return "*" * len(account_no)
    return "*" * (len(account_no) - 4) + account_no[-4:]


def mask_name(name: str) -> str:
    """Keep the family name: ``张*``, ``欧阳**``; Latin names keep their first letter."""
    if not name:
        return name
    keep = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
    return name[:keep] + "*" * (len(name) - keep)


def mask_address(address: str) -> str:
    """Keep the address up to its district: ``北京市朝阳区****``."""
    for marker in _DISTRICT_MARKERS:
        pos = address.find(marker)
        if pos >= 0:
            return address[: pos + 1] + "****"
    return "****"
