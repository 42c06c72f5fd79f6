"""Demo prepaid meters: the demo household gets one meter of each kind (remote, card, token),
each on its own electricity account of the household's power company, under that company's
rules and a three-tier tariff (阶梯电价). Seeded like the rest of the demo data, from its own
random stream so the other demo data stays as it was."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.orm import Session

from gateway.bills_import import UNITS
from gateway.bind_codes import demo_bind_code, hash_bind_code
from gateway.db.models import Household, UtilityAccount
from gateway.ids import new_id
from gateway.prepaid.meters import StsIdentity, add_meter
from gateway.prepaid.rules import DEFAULT_PRESETS, DEFAULTS, Rules, save_rules
from gateway.prepaid.tariff import Tier
from protocol.sts.identity import luhn_check_digit

# A year's first 2,160 kWh at ¥0.5603, up to 4,200 kWh at ¥0.6103, above at ¥0.8603 (prices in
# milli-fen per kWh).
DEMO_TARIFF = (Tier(2_160_000, 56030), Tier(4_200_000, 61030), Tier(None, 86030))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def add_demo_meters(
    session: Session, household: Household, biller_code: str, seed: int, now: int
) -> list[dict[str, Any]]:
    """The household's three prepaid accounts and meters; what the emulator needs to seed the
    utility (remote balance) and issue the purchase card (serial, meter number)."""
    # Per household too: demo data made twice with one seed must not make the same accounts.
    rng = random.Random(f"prepaid-{seed}-{household.household_no}")
    code_rng = random.Random(f"prepaid-bind-codes-{seed}-{household.household_no}")
    save_rules(
        session,
        Rules(biller_code=biller_code, presets_fen=DEFAULT_PRESETS, tariff=DEMO_TARIFF, **DEFAULTS),
    )
    made = []
    for kind in ("remote", "card", "token"):
        account_no = _digits(rng, 10)
        bind_code = demo_bind_code(code_rng)
        session.add(
            UtilityAccount(
                id=new_id("acc"),
                biller_code=biller_code,
                utility="electricity",
                account_no=account_no,
                holder_name=household.name,
                address=household.address,
                unit=UNITS["electricity"],
                household_id=household.id,
                # Bound after the household's billed accounts, so those stay first on the TV.
                bound_at=now + 1,
                bind_code_hash=hash_bind_code(bind_code),
            )
        )
        session.flush()
        entry: dict[str, Any] = {"kind": kind, "account_no": account_no, "bind_code": bind_code}
        if kind == "token":
            drn = _digits(rng, 10)
            entry["meter_no"] = drn + str(luhn_check_digit(drn))
            entry["sts"] = {"sgc": int(_digits(rng, 6)), "ti": 1, "krn": 1}
            sts = StsIdentity(**entry["sts"])
            add_meter(session, "electricity", account_no, kind, entry["meter_no"], sts=sts, now=now)
        elif kind == "card":
            entry["meter_no"], entry["card_serial"] = _digits(rng, 12), rng.randbytes(8).hex()
            add_meter(
                session,
                "electricity",
                account_no,
                kind,
                entry["meter_no"],
                card_serial=entry["card_serial"],
                now=now,
            )
        else:
            entry["meter_no"] = _digits(rng, 12)
            add_meter(session, "electricity", account_no, kind, entry["meter_no"], now=now)
        made.append(entry)
    return made
