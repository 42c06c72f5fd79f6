"""A virtual STS keypad meter: the household types a 20-digit token, the meter decrypts it with
its own decoder key, refuses replays, and credits the energy.

Rules, in order, for each token entered:
1. the digits (spaces and dashes allowed between them) must decode with this meter's key and
   pass the CRC, else ``invalid`` (a real meter cannot tell a typo from another meter's token);
2. a credit token of another utility (water, gas, time: subclass other than 0) is
   ``wrong_meter``;
3. a TID the meter remembers is ``used``;
4. with its memory full (the newest 50 TIDs), a TID older than the oldest remembered is ``old``:
   the meter can no longer prove it was never used. While the memory is not full it holds every
   TID ever accepted, so an older but unseen token is still accepted;
5. otherwise the units are credited and the TID remembered, the state saved before the credit
   shows.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from pathlib import Path

from emulator.meters.token_meter_state import (
    TID_MEMORY,
    TokenMeterState,
    TokenMeterStateError,
    load_state,
    save_state,
)
from protocol.sts import MeterIdentity, TokenError, decode_token
from protocol.sts.amount import WH_PER_UNIT
from protocol.sts.dea import DES_KEY_BYTES as DECODER_KEY_BYTES
from protocol.sts.token import ELECTRICITY_SUBCLASS

_SEPARATORS = str.maketrans("", "", " -")


class TokenMeterError(ValueError):
    """The meter was set up or driven with values no meter could have (not a token refusal)."""


class TokenRefusal(enum.StrEnum):
    """Why the meter refused a token (what its display would say)."""

    USED = "used"
    OLD = "old"
    INVALID = "invalid"
    WRONG_METER = "wrong_meter"


@dataclass(frozen=True)
class TokenResult:
    """The outcome of one token entry: ``units`` (0.1 kWh) credited, or a refusal ``reason``."""

    accepted: bool
    message: str
    units: int = 0
    tid: int | None = None
    reason: TokenRefusal | None = None


def _refused(reason: TokenRefusal, message: str, tid: int | None = None) -> TokenResult:
    return TokenResult(accepted=False, message=message, tid=tid, reason=reason)


class VirtualTokenMeter:
    """One keypad meter. With a ``state_path`` it survives restarts (a power cut during a save
    leaves the old state or the new one); without, it lives in memory only."""

    def __init__(
        self, meter: MeterIdentity, decoder_key: bytes, state_path: Path | None = None
    ) -> None:
        if not isinstance(meter, MeterIdentity):
            raise TokenMeterError("the meter identity must be a MeterIdentity")
        if not isinstance(decoder_key, bytes) or len(decoder_key) != DECODER_KEY_BYTES:
            raise TokenMeterError(f"the decoder key must be {DECODER_KEY_BYTES} bytes")
        self._meter = meter
        self._key = decoder_key
        self._path = state_path
        self._state = load_state(state_path, meter.drn) if state_path else TokenMeterState()

    @property
    def credit_wh(self) -> int:
        """The energy left to use, in Wh."""
        return self._state.credited_wh - self._state.used_wh

    def enter(self, digits: str) -> TokenResult:
        """Type ``digits`` on the keypad and press Enter."""
        if not isinstance(digits, str):
            return _refused(TokenRefusal.INVALID, "type the 20 digits of the token")
        try:
            token = decode_token(digits.translate(_SEPARATORS), decoder_key=self._key)
        except TokenError as exc:
            return _refused(TokenRefusal.INVALID, str(exc))
        if token.subclass != ELECTRICITY_SUBCLASS:
            return _refused(
                TokenRefusal.WRONG_METER,
                f"this token is for another kind of meter (subclass {token.subclass}); "
                "this meter takes electricity tokens",
                token.tid,
            )
        tids = self._state.tids
        if token.tid in tids:
            return _refused(TokenRefusal.USED, "this token has already been entered", token.tid)
        if len(tids) >= TID_MEMORY and token.tid < tids[0]:
            return _refused(
                TokenRefusal.OLD,
                "this token is older than every token this meter remembers; ask the utility",
                token.tid,
            )
        remembered = list(tids)
        bisect.insort(remembered, token.tid)
        self._save(
            TokenMeterState(
                credited_wh=self._state.credited_wh + token.units * WH_PER_UNIT,
                used_wh=self._state.used_wh,
                tids=tuple(remembered[-TID_MEMORY:]),
            )
        )
        return TokenResult(
            accepted=True,
            message=f"{token.units // 10}.{token.units % 10} kWh credited",
            units=token.units,
            tid=token.tid,
        )

    def consume(self, wh: int) -> int:
        """Draw ``wh`` of energy; returns the Wh supplied, less when the credit runs out."""
        if isinstance(wh, bool) or not isinstance(wh, int) or wh < 0:
            raise TokenMeterError(f"energy drawn must be a non-negative integer of Wh, not {wh!r}")
        supplied = min(wh, self.credit_wh)
        if supplied:
            state = self._state
            self._save(
                TokenMeterState(
                    credited_wh=state.credited_wh, used_wh=state.used_wh + supplied, tids=state.tids
                )
            )
        return supplied

    def _save(self, state: TokenMeterState) -> None:
        # Saved first, shown second: a failed save leaves the meter as it was.
        if self._path is not None:
            try:
                save_state(self._path, self._meter.drn, state)
            except OSError as exc:
                raise TokenMeterStateError(
                    f"cannot save the meter state {self._path}: {exc}"
                ) from None
        self._state = state
