"""The virtual purchase card's memory: serial, card key and the three elementary files.

A card given a path keeps its memory in a JSON file (mode 0600: it holds the card key), replaced
atomically on every change (temporary file, fsync, rename), so a card survives an emulator restart
and a power cut during a save leaves the old file or the new one, never a mix::

    {"format": "tvpay-card/1", "serial": hex8, "card_key": hex16,
     "files": {"issuer": hex32, "purchase": hex32, "writeback": hex32}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from emulator.files import write_private
from protocol.card import FILE_SIZE, KEY_SIZE, SERIAL_SIZE, SFI_ISSUER

FORMAT = "tvpay-card/1"
_FILE_NAMES = ("issuer", "purchase", "writeback")  # EF 0x01, 0x02, 0x03 in that order
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


class CardImageError(Exception):
    """A card file could not be read or written."""


class CardImageExists(CardImageError):
    """A card file already exists where a new card was to be issued."""


@dataclass(frozen=True)
class CardImage:
    serial: bytes
    card_key: bytes
    files: tuple[bytes, bytes, bytes]  # EF 0x01 issuer, 0x02 purchase, 0x03 write-back

    def file(self, sfi: int) -> bytes:
        return self.files[sfi - SFI_ISSUER]

    def with_file(self, sfi: int, data: bytes) -> CardImage:
        """This image with EF ``sfi`` (purchase or write-back) replaced by ``data``."""
        files = list(self.files)
        files[sfi - SFI_ISSUER] = data
        return replace(self, files=(files[0], files[1], files[2]))

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "serial": self.serial.hex(),
            "card_key": self.card_key.hex(),
            "files": dict(zip(_FILE_NAMES, (f.hex() for f in self.files), strict=True)),
        }


def _hex_field(where: str, value: object, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise CardImageError(f"{where} must be {size} bytes in lower-case hex")
    return bytes.fromhex(value)


def _image_from_json(value: object, source: Path) -> CardImage:
    """Validate a card file's JSON; CardImageError naming the file and the field otherwise."""
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise CardImageError(f"{source} is not a purchase card file ({FORMAT})")
    files = value.get("files")
    if not isinstance(files, dict) or set(files) != set(_FILE_NAMES):
        raise CardImageError(f"{source}: files must hold exactly {', '.join(_FILE_NAMES)}")
    issuer, purchase, writeback = (
        _hex_field(f"{source}: files.{name}", files[name], FILE_SIZE) for name in _FILE_NAMES
    )
    return CardImage(
        serial=_hex_field(f"{source}: serial", value.get("serial"), SERIAL_SIZE),
        card_key=_hex_field(f"{source}: card_key", value.get("card_key"), KEY_SIZE),
        files=(issuer, purchase, writeback),
    )


def load_image(path: Path) -> CardImage:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardImageError(f"cannot read the card file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CardImageError(f"{path} is not a purchase card file (not UTF-8 text)") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardImageError(f"{path} is not a purchase card file: {exc}") from None
    return _image_from_json(value, path)


def save_image(path: Path, image: CardImage) -> None:
    """Replace the card file atomically with ``image``."""
    write_private(path, json.dumps(image.to_json(), indent=1).encode())


def create_image(path: Path, image: CardImage) -> None:
    """Write a new card file; refuses to overwrite an existing card."""
    if path.exists():
        raise CardImageExists(f"a card file already exists at {path}; remove it or pick another")
    save_image(path, image)
