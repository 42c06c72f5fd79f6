"""Finding a CJK font through fontconfig and making the right face of a collection usable.

Kivy's SDL2 text provider always opens face 0 of a file. The combined Noto Sans CJK collection
(.ttc) has the Japanese face first, whose glyph shapes are wrong for Chinese readers, so when
the wanted face is not the first one it is copied out of the collection into a standalone
font file (tables are copied byte for byte; only the table directory is rewritten).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path


class FontNotFound(RuntimeError):
    """No font with Chinese glyphs is installed."""

    def __init__(self) -> None:
        super().__init__(
            "no Chinese font found through fontconfig: install one with "
            "'apt-get install fonts-wqy-microhei' (or fonts-noto-cjk)"
        )


class FontFileError(ValueError):
    """A font collection could not be read."""


@dataclass(frozen=True, slots=True)
class FontFace:
    path: str
    index: int
    family: str


# Traditional-Chinese text looks right only with a TC face; WenQuanYi covers both scripts.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "zh_CN": ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei"),
    "zh_TW": ("Noto Sans CJK TC", "Source Han Sans TC", "WenQuanYi Micro Hei"),
    "en": ("Noto Sans CJK SC", "WenQuanYi Micro Hei"),
}


def find_cjk_face(language: str = "zh_CN") -> FontFace:
    """The best installed face for ``language``; raises FontNotFound when none is installed.

    ``fc-list`` with an exact family pattern lists only installed faces (``fc-match`` would
    fall back to any font), and gives the face index inside a collection.
    """
    if shutil.which("fc-list") is None:
        raise FontNotFound()
    for family in _FAMILIES.get(language, _FAMILIES["zh_CN"]):
        out = subprocess.run(
            ["fc-list", "-f", "%{file}|%{index}|%{family}\n", f"{family}:style=Regular"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout
        for line in sorted(out.splitlines()):
            path, index, families = line.split("|", 2)
            # fc-list matches on any of a face's family names; insist on the one we asked for.
            if family in families.split(","):
                return FontFace(path, int(index), family)
    raise FontNotFound()


def usable_font_file(face: FontFace, cache_dir: Path) -> str:
    """A path Kivy can open for ``face``: the file itself for face 0, else an extracted copy."""
    if face.index == 0:
        return face.path
    key = hashlib.sha256(f"{face.path}|{os.stat(face.path).st_mtime_ns}".encode()).hexdigest()
    out = cache_dir / f"face-{key[:16]}-{face.index}.otf"
    if not out.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        data = Path(face.path).read_bytes()
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(extract_face(data, face.index))
        os.replace(tmp, out)
    return str(out)


def extract_face(collection: bytes, index: int) -> bytes:
    """One face of a TrueType/OpenType collection as a standalone font file."""
    try:
        tag, _version, count = struct.unpack_from(">4sII", collection, 0)
        if tag != b"ttcf" or not 0 <= index < count:
            raise FontFileError(f"not a font collection with a face {index}")
        (directory,) = struct.unpack_from(">I", collection, 12 + 4 * index)
        sfnt_version, num_tables, search, selector, shift = struct.unpack_from(
            ">IHHHH", collection, directory
        )
        records = [
            struct.unpack_from(">4sIII", collection, directory + 12 + 16 * i)
            for i in range(num_tables)
        ]
    except struct.error:
        raise FontFileError("font collection is truncated") from None
    header = struct.pack(">IHHHH", sfnt_version, num_tables, search, selector, shift)
    offset = 12 + 16 * num_tables
    entries, bodies = [], []
    for table_tag, checksum, table_offset, length in records:
        body = collection[table_offset : table_offset + length]
        if len(body) != length:
            raise FontFileError("font collection is truncated")
        entries.append(struct.pack(">4sIII", table_tag, checksum, offset, length))
        padded = body + b"\0" * (-length % 4)
        bodies.append(padded)
        offset += len(padded)
    return header + b"".join(entries) + b"".join(bodies)
