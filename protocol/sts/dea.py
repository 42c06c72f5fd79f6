"""DEA (single DES, ECB, one 64-bit block): token encryption algorithm EA09 and the cipher inside
DKGA02. ``cryptography`` keeps DES only as TripleDES in its decrepit module; TripleDES with one
8-byte key repeated three times is DES (EDE with K1 = K2 = K3)."""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

DES_KEY_BYTES = 8
BLOCK_BYTES = 8


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(TripleDES(key * 3), modes.ECB())


def des_encrypt(key: bytes, block: bytes) -> bytes:
    """DES encryption of one 8-byte block under an 8-byte key (parity bits ignored)."""
    encryptor = _cipher(key).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def des_decrypt(key: bytes, block: bytes) -> bytes:
    """DES decryption of one 8-byte block under an 8-byte key."""
    decryptor = _cipher(key).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def dea_encrypt(key: bytes, block: int) -> int:
    """EA09: the 64-bit token data block (most significant byte first) encrypted with DES."""
    return int.from_bytes(des_encrypt(key, block.to_bytes(BLOCK_BYTES, "big")), "big")


def dea_decrypt(key: bytes, block: int) -> int:
    """The inverse of ``dea_encrypt``."""
    return int.from_bytes(des_decrypt(key, block.to_bytes(BLOCK_BYTES, "big")), "big")
