"""A QR code as a Kivy texture, drawn from the qrcode module's module matrix (no image files).

Encoding is the slow part (about 10 ms: qrcode tries every mask pattern) and needs no Kivy, so
``qr_modules`` runs on a worker thread while a payment finishes; the UI thread then only
uploads the cached result as a texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import qrcode
from kivy.graphics.texture import Texture


@dataclass(frozen=True, slots=True)
class QrModules:
    size: int
    pixels: bytes  # one byte per module, bottom row first: dark 0, light 255


@lru_cache(maxsize=8)
def qr_modules(data: str, border: int = 2) -> QrModules:
    """Encode ``data``; thread-safe, and cached so the UI thread reuses a worker's result."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    # Kivy textures start at the bottom row.
    pixels = bytes(0 if dark else 255 for row in reversed(matrix) for dark in row)
    return QrModules(len(matrix), pixels)


def qr_texture(data: str, border: int = 2) -> Texture:
    modules = qr_modules(data, border)
    texture = Texture.create(size=(modules.size, modules.size), colorfmt="luminance")
    texture.blit_buffer(modules.pixels, colorfmt="luminance", bufferfmt="ubyte")
    texture.mag_filter = "nearest"
    texture.min_filter = "nearest"
    return texture
