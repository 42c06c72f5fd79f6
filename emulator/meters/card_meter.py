"""The virtual IC-card meter (本地费控): credits purchases carried by the household's 购电卡.

The meter's ESAM holds the biller's vending master key and derives each card's key from the
card's serial; it talks to the card only through the card's contacts (power-on reset, APDUs).

On each insertion: read the three files; the card must name this meter (else ``wrong_meter``) and
its purchase record and write-back must carry valid MACs (else ``not_authentic``). Then, with the
card's purchase count C and the meter's count N:

- C = N + 1 and the write-back empty → credit the amount; the meter's count becomes N + 1;
- C = N + 1 and the write-back full → refuse ``writeback_not_read`` (the vending side has not read
  the last report: it clears the write-back in the same session that writes a purchase);
- C = N → nothing new; C < N → an old card image, ignored;
- C ≥ N + 2 → refuse ``count_error`` (a purchase is missing in between).

Then, except for a card that is not this meter's authentic card, the meter writes back its
remaining balance, its count, the energy used and the time, MAC'ed with the card key. The meter's
own state is saved before the write-back, so a card pulled out at any point is credited once.

Consumption is measured in Wh (``consume``) and charged at a flat price in milli-fen per kWh; the
balance is the money credited minus the cost of all energy used, rounded up to the fen, and may go
below zero (the write-back's remaining balance is signed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from emulator.meters.card_meter_state import CardMeterState, load_state, save_state
from protocol.card import (
    KEY_SIZE,
    METER_NO_DIGITS,
    SFI_ISSUER,
    SFI_PURCHASE,
    SFI_WRITEBACK,
    CardError,
    IssuerFile,
    PurchaseRecord,
    WriteBack,
    card_key,
    check_response,
    get_challenge,
    read_binary,
    sm_update,
)

DEFAULT_PRICE_MILLI_FEN_PER_KWH = 56030  # 0.5603 yuan/kWh, the first tier of the demo tariff


class CardContacts(Protocol):
    """What a meter's card reader can do with the card in it."""

    def reset(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...


class Outcome(StrEnum):
    CREDITED = "credited"
    NOTHING = "nothing"
    REFUSED = "refused"


class Refusal(StrEnum):
    NOT_AUTHENTIC = "not_authentic"
    WRONG_METER = "wrong_meter"
    COUNT_ERROR = "count_error"
    WRITEBACK_NOT_READ = "writeback_not_read"


@dataclass(frozen=True)
class MeterOutcome:
    outcome: Outcome
    message: str  # what the meter's display says, for a person
    amount_fen: int = 0  # credited by this insertion
    reason: Refusal | None = None
    written_back: bool = False  # the card now holds this meter's report


class VirtualCardMeter:
    def __init__(
        self,
        meter_no: str,
        master: bytes,
        state_path: Path | None = None,
        *,
        price_milli_fen_per_kwh: int = DEFAULT_PRICE_MILLI_FEN_PER_KWH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (
            isinstance(meter_no, str)
            and len(meter_no) == METER_NO_DIGITS
            and meter_no.isascii()
            and meter_no.isdigit()
        ):
            raise ValueError(f"a card meter's number is {METER_NO_DIGITS} ASCII digits")
        if not isinstance(master, bytes) or len(master) != KEY_SIZE:
            raise ValueError(f"a card meter's vending master key is {KEY_SIZE} bytes")
        self.meter_no = meter_no
        self._master = master
        self._state_path = state_path
        self._price = price_milli_fen_per_kwh
        self._clock = clock
        self._state = CardMeterState() if state_path is None else load_state(state_path, meter_no)

    @property
    def count(self) -> int:
        return self._state.count

    @property
    def total_used_wh(self) -> int:
        return self._state.total_used_wh

    @property
    def balance_fen(self) -> int:
        cost = -(-self._state.total_used_wh * self._price // 1_000_000)  # ceil: the meter rounds up
        return self._state.credited_fen - cost

    def consume(self, wh: int) -> None:
        """Measure ``wh`` more watt-hours of use."""
        if isinstance(wh, bool) or not isinstance(wh, int) or wh < 0:
            raise ValueError("energy used must be a non-negative integer of Wh")
        self._commit(replace(self._state, total_used_wh=self._state.total_used_wh + wh))

    def insert(self, card: CardContacts) -> MeterOutcome:
        card.reset()
        try:
            issuer = IssuerFile.parse(check_response(card.transmit(read_binary(SFI_ISSUER))))
            purchase = PurchaseRecord.parse(
                check_response(card.transmit(read_binary(SFI_PURCHASE)))
            )
            writeback = WriteBack.parse(check_response(card.transmit(read_binary(SFI_WRITEBACK))))
        except CardError as exc:
            return _refused(
                Refusal.NOT_AUTHENTIC, f"not a purchase card this meter can read: {exc}"
            )
        if issuer.meter_no != self.meter_no:
            return _refused(
                Refusal.WRONG_METER,
                f"this card belongs to meter {issuer.meter_no}, not to meter {self.meter_no}",
            )
        key = card_key(self._master, issuer.serial)
        if not (purchase.verify(key, issuer) and writeback.verify(key, issuer)):
            return _refused(
                Refusal.NOT_AUTHENTIC,
                "the card's data is not signed by this meter's utility: "
                "have the card checked at the utility's service hall",
            )
        outcome = self._apply(purchase, writeback)
        return replace(outcome, written_back=self._write_back(card, key, issuer))

    def _apply(self, purchase: PurchaseRecord, writeback: WriteBack) -> MeterOutcome:
        count = self._state.count
        if purchase.count == count + 1:
            if writeback.full:
                return _refused(
                    Refusal.WRITEBACK_NOT_READ,
                    "the card still holds the meter's last report: buy or re-write the purchase "
                    "at the box so the card is read, then insert it again",
                )
            self._commit(
                replace(
                    self._state,
                    count=purchase.count,
                    credited_fen=self._state.credited_fen + purchase.amount_fen,
                )
            )
            return MeterOutcome(
                Outcome.CREDITED,
                f"purchase {purchase.count} credited: {purchase.amount_fen} fen",
                amount_fen=purchase.amount_fen,
            )
        if purchase.count == count:
            return MeterOutcome(
                Outcome.NOTHING, f"no new purchase on the card (the meter has credited {count})"
            )
        if purchase.count < count:
            return MeterOutcome(
                Outcome.NOTHING,
                f"the card holds purchase {purchase.count}, older than the meter's {count}: ignored",
            )
        return _refused(
            Refusal.COUNT_ERROR,
            f"purchase count error: the card holds purchase {purchase.count} but the meter last "
            f"credited {count}; take the card to the utility's service hall",
        )

    def _write_back(self, card: CardContacts, key: bytes, issuer: IssuerFile) -> bool:
        report = WriteBack(
            full=True,
            meter_count=self._state.count,
            remaining_fen=self.balance_fen,
            total_used_wh=self._state.total_used_wh,
            at=int(self._clock()),
        ).sign(key, issuer)
        try:
            challenge = check_response(card.transmit(get_challenge()))
            apdu = sm_update(
                card_key=key, challenge=challenge, seq=0, sfi=SFI_WRITEBACK, data=report.to_bytes()
            )
            check_response(card.transmit(apdu))
        except CardError:
            return False  # the credit stands; the next insertion writes back again
        return True

    def _commit(self, state: CardMeterState) -> None:
        """Save first, then adopt: a failed save leaves the meter as it was."""
        if self._state_path is not None:
            save_state(self._state_path, self.meter_no, state)
        self._state = state


def _refused(reason: Refusal, message: str) -> MeterOutcome:
    return MeterOutcome(Outcome.REFUSED, message, reason=reason)
