"""The demo household's prepaid meters in the emulated home: a remote meter (its balance kept at
the utility simulator), an IC-card meter with the household's purchase card (购电卡), and an STS
keypad meter.

The gateway's demo data registers the three meters (``gateway.prepaid.demo``); at each start of
the stack they are read from the gateway's database and brought to life:

- the purchase card is issued once, into ``STATE/prepaid/card.json``, personalised with the
  biller's vending master key derived from the gateway's ``vending.key`` exactly as the gateway's
  simulated HSM derives it, and put in the demo dongle's card slot (slots are empty after a
  start: the household keeps the card in the box);
- the card meter holds the same master key (its ESAM) and the card's meter number;
- the token meter's decoder key comes from the gateway's own STS derivation for that meter
  (``gateway.prepaid.tokens``), so a token the gateway issues is one this meter accepts;
- the remote meter's account is seeded at the utility simulator the first time it is unknown
  there (afterwards the utility's books carry it, purchases included).

Meter states live in ``STATE/prepaid`` and survive restarts. All operations are thread-safe: the
automation API calls them from its worker threads.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from emulator.automation.box import CardMoveRefused, NoMeters, ServiceFailed
from emulator.card import CardImageError, VirtualPurchaseCard, issue_card
from emulator.card.image import load_image
from emulator.meters.card_meter import MeterOutcome, VirtualCardMeter
from emulator.meters.token_meter import TokenResult, VirtualTokenMeter
from emulator.meters.token_meter_state import TokenMeterStateError
from emulator.stack.layout import Layout
from emulator.stack.setup import SetupError
from emulator.usb.cable import CableControl, CableError
from gateway.db.models import Household, PrepaidMeter, UtilityAccount
from gateway.errors import ConfigError
from gateway.keys import load_keys
from gateway.prepaid.demo import DEMO_TARIFF
from gateway.prepaid.tokens import decoder_key, identity
from protocol.card import SFI_PURCHASE, CardError, PurchaseRecord, vending_master_key

log = logging.getLogger(__name__)

CURRENCY = "CNY"
# The remote meter's account at the utility: a month of history at a household's usual use, so
# the TV shows a balance with days left from the first start.
REMOTE_HISTORY_DAYS = 30
REMOTE_OPENING_BALANCE_FEN = 20_000
REMOTE_DAILY_USE_WH = 6_000
# The gateway asks the utility for a remote balance with a short timeout too: the panel must
# not hang on a utility the demo has slowed down.
UTILITY_TIMEOUT = 2.0


class CardPlace(enum.StrEnum):
    OUT = "out"  # in the household's hand
    BOX = "box"  # in the demo dongle's card slot
    METER = "meter"  # in the card meter's reader


_PLACE_WORDS = {
    CardPlace.OUT: "out (in the household's hand)",
    CardPlace.BOX: "in the box (the payment dongle's card slot)",
    CardPlace.METER: "in the meter",
}


@dataclass(frozen=True)
class DemoMeters:
    """The demo household's three meters as the gateway registered them."""

    biller_code: str
    remote: tuple[PrepaidMeter, UtilityAccount]
    card: PrepaidMeter
    token: PrepaidMeter


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def read_demo_meters(gateway_db: Path, household_no: str) -> DemoMeters | None:
    """The household's meters from the gateway's database (read-only); None if it has no
    remote, card and token meter (demo data made before prepaid meters existed)."""
    engine = create_engine(f"sqlite:///file:{gateway_db}?mode=ro&uri=true")
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(PrepaidMeter, UtilityAccount)
                .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
                .join(Household, UtilityAccount.household_id == Household.id)
                .where(Household.household_no == household_no)
            ).all()
            session.expunge_all()  # plain records from here on: the engine is closed below
    finally:
        engine.dispose()
    by_kind = {meter.kind: (meter, account) for meter, account in rows}
    if not {"remote", "card", "token"} <= by_kind.keys():
        return None
    return DemoMeters(
        biller_code=by_kind["card"][1].biller_code,
        remote=by_kind["remote"],
        card=by_kind["card"][0],
        token=by_kind["token"][0],
    )


def _utility_call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of a utility simulator call; OSError when it does not answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=UTILITY_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {}
    except ValueError as exc:
        raise OSError(f"the utility answered something that is not JSON ({exc})") from None


def _seed_remote_account(utility_url: str, account_no: str) -> None:
    """Open the remote meter's prepaid account at the utility unless it already knows it."""
    status, answer = _utility_call(f"{utility_url}/meters/{account_no}")
    if status == 200:
        return
    if answer.get("error", {}).get("code") != "account_unknown":
        raise SetupError(
            f"the utility simulator answered {status} for the prepaid account {account_no};"
            " see logs/utility.log"
        )
    since = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(REMOTE_HISTORY_DAYS)
    status, _answer = _utility_call(
        f"{utility_url}/control/seed",
        {
            "prepaid": [
                {
                    "account_no": account_no,
                    "balance_fen": REMOTE_OPENING_BALANCE_FEN,
                    "currency": CURRENCY,
                    "daily_use_wh": REMOTE_DAILY_USE_WH,
                    "price_milli_fen_per_kwh": DEMO_TARIFF[0].price_milli_fen_per_kwh,
                    "since": since.isoformat(),
                }
            ]
        },
    )
    if status != 200:
        raise SetupError(
            f"the utility simulator refused the prepaid account {account_no} ({status});"
            " see logs/utility.log"
        )


def _card_outcome(outcome: MeterOutcome) -> dict[str, Any]:
    return {
        "outcome": str(outcome.outcome),
        "message": outcome.message,
        "amount_fen": outcome.amount_fen,
        "reason": str(outcome.reason) if outcome.reason else None,
        "written_back": outcome.written_back,
        "at": _now_iso(),
    }


def _token_outcome(result: TokenResult) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "message": result.message,
        "units": result.units,
        "tid": result.tid,
        "reason": str(result.reason) if result.reason else None,
        "at": _now_iso(),
    }


class HouseholdMeters:
    """The three meters and where the purchase card is, for one run of the stack."""

    def __init__(
        self,
        *,
        meters: DemoMeters,
        card_path: Path,
        card_meter: VirtualCardMeter,
        token_meter: VirtualTokenMeter,
        cable_address: str,
        dongle_serial: str,
        utility_url: str,
    ) -> None:
        self._meters = meters
        self._card_path = card_path
        self._card_meter = card_meter
        self._token_meter = token_meter
        # A connection of its own: CableControl is one socket, and the stack's is used under
        # the stack's lock from other threads.
        self._control = CableControl(cable_address)
        self._serial = dongle_serial
        self._utility_url = utility_url
        self._place = CardPlace.OUT
        self._last_card: dict[str, Any] | None = None
        self._last_token: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._control.close()

    # -- the card -------------------------------------------------------------------------------

    def _slot_card(self) -> str | None:
        """The card file in the demo dongle's slot (None: empty)."""
        try:
            return self._control.card_status(self._serial).get("card")
        except CableError as exc:
            raise ServiceFailed(f"the virtual cable is not answering: {exc}") from None

    def _card_place(self) -> CardPlace:
        """Where the card is now: a slot fault may have pulled it out of the box meanwhile."""
        if self._place is CardPlace.BOX:
            held = self._slot_card()
            if held is None or Path(held) != self._card_path:
                self._place = CardPlace.OUT
        return self._place

    def _insert_in_box(self) -> None:
        try:
            self._control.card_insert(self._serial, self._card_path)
        except CableError as exc:
            raise CardMoveRefused(f"the box's card slot refused the card: {exc}") from None
        self._place = CardPlace.BOX

    def put_card_in_box(self) -> None:
        """At start: the household keeps its card in the box."""
        with self._lock:
            if self._card_place() is not CardPlace.BOX:
                self._insert_in_box()

    def move_card(self, to: str) -> dict[str, Any]:
        """Move the card ``out``, into the ``box`` slot or into the ``meter`` (which runs the
        meter's rules on it at once and answers with its outcome)."""
        try:
            target = CardPlace(to)
        except ValueError:
            raise CardMoveRefused(
                f"the card can go to {', '.join(p.value for p in CardPlace)}, not {to!r}"
            ) from None
        with self._lock:
            here = self._card_place()
            if here is target:
                raise CardMoveRefused(f"the card is already {_PLACE_WORDS[here]}")
            if here is CardPlace.BOX:
                try:
                    self._control.card_remove(self._serial)
                except CableError as exc:
                    raise ServiceFailed(f"the virtual cable is not answering: {exc}") from None
            self._place = CardPlace.OUT
            outcome = None
            if target is CardPlace.BOX:
                self._insert_in_box()
            elif target is CardPlace.METER:
                try:
                    card = VirtualPurchaseCard.load(self._card_path)
                except CardImageError as exc:
                    raise CardMoveRefused(str(exc)) from None
                outcome = self._last_card = _card_outcome(self._card_meter.insert(card))
                self._place = CardPlace.METER
            log.info("event=card_moved to=%s", target)
            return {"card_at": str(self._place), "outcome": outcome}

    def _card_count(self) -> int | None:
        """The purchase count the card holds (None: its file cannot be read as a card)."""
        try:
            purchase = load_image(self._card_path).file(SFI_PURCHASE)
            return PurchaseRecord.parse(purchase).count
        except (CardImageError, CardError):
            return None

    # -- the token meter ----------------------------------------------------------------------

    def enter_token(self, digits: str) -> dict[str, Any]:
        """Type ``digits`` on the keypad meter; its answer (a refusal is an answer too)."""
        with self._lock:
            try:
                result = self._token_meter.enter(digits)
            except TokenMeterStateError as exc:
                raise ServiceFailed(str(exc)) from None
            self._last_token = _token_outcome(result)
            return {**self._last_token, "credit_wh": self._token_meter.credit_wh}

    # -- what the panel shows -----------------------------------------------------------------

    def _remote_balance(self) -> dict[str, Any]:
        meter, account = self._meters.remote
        shown: dict[str, Any] = {"meter_no": meter.meter_no, "account_no": account.account_no}
        try:
            status, answer = _utility_call(f"{self._utility_url}/meters/{account.account_no}")
        except OSError as exc:
            return {**shown, "error": f"the utility is not answering ({exc})"}
        if status != 200:
            message = answer.get("error", {}).get("message", f"HTTP {status}")
            return {**shown, "error": f"the utility refused: {message}"}
        return {
            **shown,
            "balance_fen": answer.get("balance_fen"),
            "currency": answer.get("currency"),
            "as_of": answer.get("as_of"),
        }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            place = self._card_place()
            card_meter = {
                "meter_no": self._card_meter.meter_no,
                "count": self._card_meter.count,
                "balance_fen": self._card_meter.balance_fen,
                "currency": CURRENCY,
                "total_used_wh": self._card_meter.total_used_wh,
                "last_outcome": self._last_card,
            }
            token_meter = {
                "meter_no": self._meters.token.meter_no,
                "credit_wh": self._token_meter.credit_wh,
                "last_outcome": self._last_token,
            }
            card = {"at": str(place), "count": self._card_count(), "file": str(self._card_path)}
        # Outside the lock: a slow utility must not hold up moving the card.
        return {
            "card": card,
            "card_meter": card_meter,
            "token_meter": token_meter,
            "remote_meter": self._remote_balance(),
        }


def require(meters: HouseholdMeters | None) -> HouseholdMeters:
    if meters is None:
        raise NoMeters(
            "the demo household has no prepaid meters: its state directory was set up before"
            " they existed; start with a new --state-dir"
        )
    return meters


def start_meters(
    layout: Layout,
    *,
    household_no: str,
    cable_address: str,
    dongle_serial: str,
    utility_url: str,
) -> HouseholdMeters | None:
    """Bring the household's meters up for this run, with the card in the box's slot."""
    meters = read_demo_meters(layout.gateway_db, household_no)
    if meters is None:
        log.warning("event=no_prepaid_meters household=%s", household_no)
        return None
    try:
        secret = load_keys(layout.gateway).vending_secret
    except ConfigError as exc:
        raise SetupError(f"cannot read the gateway's vending secret: {exc}") from None
    master = vending_master_key(secret, meters.biller_code)
    home = layout.root / "prepaid"
    home.mkdir(mode=0o700, exist_ok=True)
    card_path = home / "card.json"
    card = meters.card
    if not card_path.exists():
        assert card.card_serial is not None  # demo data registers the card with its meter
        issue_card(
            serial=bytes.fromhex(card.card_serial),
            biller=meters.biller_code,
            meter_no=card.meter_no,
            master=master,
            path=card_path,
        )
    sts = identity(meters.token)
    try:
        _seed_remote_account(utility_url, meters.remote[1].account_no)
    except OSError as exc:
        raise SetupError(
            f"the utility simulator is not answering ({exc}); see logs/utility.log"
        ) from None
    household = HouseholdMeters(
        meters=meters,
        card_path=card_path,
        card_meter=VirtualCardMeter(card.meter_no, master, home / "card-meter.json"),
        token_meter=VirtualTokenMeter(
            sts, decoder_key(secret, meters.token), home / "token-meter.json"
        ),
        cable_address=cable_address,
        dongle_serial=dongle_serial,
        utility_url=utility_url,
    )
    try:
        household.put_card_in_box()
    except (CardMoveRefused, ServiceFailed) as exc:
        household.close()
        raise SetupError(f"the purchase card could not go into the box: {exc}") from None
    return household
