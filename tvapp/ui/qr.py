"""A QR code as a Kivy texture, drawn from the qrcode module's module matrix (no image files)."""

from __future__ import annotations

import qrcode
from kivy.graphics.texture import Texture


def qr_texture(data: str, border: int = 2) -> Texture:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    # Kivy textures start at the bottom row; dark modules are 0, light 255.
    rows = reversed(matrix)
    pixels = bytes(0 if dark else 255 for row in rows for dark in row)
    texture = Texture.create(size=(size, size), colorfmt="luminance")
    texture.blit_buffer(pixels, colorfmt="luminance", bufferfmt="ubyte")
    texture.mag_filter = "nearest"
    texture.min_filter = "nearest"
    return texture
