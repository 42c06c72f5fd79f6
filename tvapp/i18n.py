"""Gettext catalogues of the app: Simplified Chinese (default), Traditional Chinese, English.

The sources are the .po files under tvapp/locale/<lang>/LC_MESSAGES/tvapp.po; they are compiled
in memory with Babel when a language is first used, so there is no build step and no stale .mo.
Message ids are English; the English catalogue only overrides where wording differs.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "tvapp"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "zh_CN"
# Each language's name is written in that language: a user who cannot read the current one
# must still find their own.
LANGUAGES: dict[str, str] = {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}


class UnknownLanguage(ValueError):
    def __init__(self, language: str) -> None:
        super().__init__(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise UnknownLanguage(language)
    return language


def po_path(language: str) -> Path:
    return LOCALE_DIR / check_language(language) / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language``."""
    with po_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)
