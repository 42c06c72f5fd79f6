"""STS prepaid tokens (IEC 62055-41): class-0 credit tokens, 20 digits a household types on a
keypad meter. Pure computation, no I/O: shared by the gateway (which issues tokens) and the
emulator's virtual token meter (which accepts them)."""

from protocol.sts.amount import MAX_UNITS, units_from_wh
from protocol.sts.dkga import derive_decoder_key
from protocol.sts.errors import TokenError
from protocol.sts.identity import MeterIdentity
from protocol.sts.tid import tid_at
from protocol.sts.token import Algorithm, TokenData, credit_token, decode_token

__all__ = [
    "MAX_UNITS",
    "Algorithm",
    "MeterIdentity",
    "TokenData",
    "TokenError",
    "credit_token",
    "decode_token",
    "derive_decoder_key",
    "tid_at",
    "units_from_wh",
]
