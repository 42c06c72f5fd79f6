"""Realistic demo data: households with 户号, Chinese names and addresses, electricity, water, gas,
phone and TV accounts, 12 months of usage and bills, some of them due or overdue.

Everything comes from one seeded random generator, so a seed always gives the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.bills_import import BillRow, add_bill, upsert_account
from gateway.bind_codes import demo_bind_code, hash_bind_code
from gateway.clock import now
from gateway.db.models import Bill, Household
from gateway.funding.wallet import credit_wallet
from gateway.prepaid.demo import add_demo_meters

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华文丽志强晓明海燕雪梅玉兰红梅淑珍春梅子涵浩然欣怡宇轩梓萱一诺"
# (city, districts, power company code and name); 南方电网 serves Guangdong, Guangxi, Yunnan, …
_CITIES = [
    ("北京市", ["朝阳区", "海淀区", "东城区", "丰台区"], "SGCC-BJ", "国网北京市电力公司"),
    ("上海市", ["浦东新区", "徐汇区", "静安区", "闵行区"], "SGCC-SH", "国网上海市电力公司"),
    ("广州市", ["天河区", "越秀区", "海珠区", "番禺区"], "CSG-GZ", "南方电网广州供电局"),
    ("深圳市", ["南山区", "福田区", "宝安区", "龙岗区"], "CSG-SZ", "南方电网深圳供电局"),
    ("杭州市", ["西湖区", "拱墅区", "滨江区", "余杭区"], "SGCC-ZJ", "国网浙江省电力公司"),
    ("成都市", ["武侯区", "锦江区", "青羊区", "成华区"], "SGCC-SC", "国网四川省电力公司"),
]
_STREETS = [
    "建设路",
    "人民路",
    "解放路",
    "中山路",
    "和平街",
    "幸福里",
    "光明路",
    "新华街",
    "长江路",
]
# utility → (monthly quantity range, fen per unit, biller name template)
_TARIFFS: dict[str, tuple[tuple[int, int], int]] = {
    "electricity": ((120, 480), 56),
    "water": ((6, 22), 500),
    "gas": ((8, 40), 300),
    "phone": ((150, 900), 0),
    "tv": ((28, 31), 0),
}
_FLAT_FEE = {"phone": (5800, 12800), "tv": (2000, 3500)}


@dataclass(frozen=True, slots=True)
class DemoAccount:
    utility: str
    biller: str
    account_no: str
    holder_name: str
    bind_code: str
    bound: bool


@dataclass(frozen=True, slots=True)
class DemoHousehold:
    household_no: str
    name: str
    address: str
    accounts: list[DemoAccount]
    # The demo household's prepaid meters (gateway.prepaid.demo); none for the others.
    prepaid: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "household_no": self.household_no,
            "name": self.name,
            "address": self.address,
            "prepaid": self.prepaid,
            "accounts": [
                {
                    "utility": a.utility,
                    "biller": a.biller,
                    "account_no": a.account_no,
                    "holder_name": a.holder_name,
                    "bind_code": a.bind_code,
                    "bound": a.bound,
                }
                for a in self.accounts
            ],
        }


def _months_back(count: int) -> list[date]:
    first = date.today().replace(day=1)
    months = []
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return list(reversed(months))


def _billers(city: tuple[str, list[str], str, str]) -> dict[str, tuple[str, str]]:
    name, _, power_code, power_name = city
    short = power_code.split("-")[1]
    return {
        "electricity": (power_code, power_name),
        "water": (f"WATER-{short}", f"{name}自来水集团"),
        "gas": (f"GAS-{short}", f"{name}燃气集团"),
        "phone": (f"CT-{short}", f"中国电信{name[:-1]}分公司"),
        "tv": (f"CATV-{short}", f"{name[:-1]}有线电视网络"),
    }


def _account_no(rng: random.Random, utility: str) -> str:
    digits = {"electricity": 10, "water": 9, "gas": 10, "phone": 11, "tv": 12}[utility]
    if utility == "phone":
        return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
    return "".join(rng.choice("0123456789") for _ in range(digits))


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _bill_rows(
    rng: random.Random,
    utility: str,
    biller: tuple[str, str],
    account_no: str,
    holder: str,
    address: str,
) -> list[BillRow]:
    (lo, hi), fen_per_unit = _TARIFFS[utility]
    rows = []
    for month in _months_back(12):
        # Seasonal swing: more electricity in summer and winter, more gas in winter.
        season = 1.0 + 0.35 * (month.month in (1, 2, 7, 8, 12))
        quantity = round(rng.uniform(lo, hi) * season, 1)
        if utility in _FLAT_FEE:
            amount = rng.randint(*_FLAT_FEE[utility])
        else:
            amount = max(1, int(quantity * fen_per_unit))
        period = month.strftime("%Y-%m")
        rows.append(
            BillRow(
                biller_code=biller[0],
                biller_name=biller[1],
                utility=utility,
                account_no=account_no,
                holder_name=holder,
                address=address,
                bill_ref=f"{biller[0]}-{period}",
                period=period,
                amount_fen=amount,
                currency="CNY",
                due_date=(month + timedelta(days=45)).isoformat(),
                usage_milli=int(quantity * 1000),
            )
        )
    return rows


def create_demo_data(session: Session, households: int, seed: int) -> list[DemoHousehold]:
    """Create households with accounts and a year of bills; bills older than the last two are
    paid, the latest ones due (and some of those overdue)."""
    rng = random.Random(seed)
    # Codes from their own stream, so a seed still gives the same households as before.
    code_rng = random.Random(f"bind-codes-{seed}")
    created: list[DemoHousehold] = []
    t = now()
    while len(created) < households:
        household_no = "".join(rng.choice("0123456789") for _ in range(10))
        if session.scalar(select(Household.id).where(Household.household_no == household_no)):
            continue
        city = rng.choice(_CITIES)
        address = (
            f"{city[0]}{rng.choice(city[1])}{rng.choice(_STREETS)}{rng.randint(1, 300)}号"
            f"{rng.randint(1, 30)}栋{rng.randint(1, 3)}单元{rng.randint(101, 2604)}室"
        )
        name = _person(rng)
        household = Household(household_no=household_no, name=name, address=address, created_at=t)
        session.add(household)
        session.flush()
        accounts, account_ids = [], []
        for utility, biller in _billers(city).items():
            # A spouse may hold some accounts: binding by name needs the holder's, not ours.
            holder = name if rng.random() < 0.7 else name[0] + _person(rng)[1:]
            account_no = _account_no(rng, utility)
            bound = utility != "gas" or rng.random() < 0.5  # some left for the binding demo
            rows = _bill_rows(rng, utility, biller, account_no, holder, address)
            account = upsert_account(session, rows[0])
            account_ids.append(account.id)
            bind_code = demo_bind_code(code_rng)
            account.bind_code_hash = hash_bind_code(bind_code)
            for row in rows:
                add_bill(session, account, row)
            if bound:
                account.household_id, account.bound_at = household.id, t
            _settle_history(session, account.id, keep_unpaid=rng.choice((0, 1, 1, 2)), at=t)
            accounts.append(DemoAccount(utility, biller[1], account_no, holder, bind_code, bound))
        _fund_wallet(session, household_no, account_ids)
        # The first household is the one the emulator's box uses: it also buys electricity.
        prepaid = add_demo_meters(session, household, city[2], seed, t) if not created else []
        created.append(DemoHousehold(household_no, name, address, accounts, prepaid))
    audit.record(session, "cli", "demo_data", f"{households} households", seed=seed)
    return created


def _fund_wallet(session: Session, household_no: str, account_ids: list[str]) -> None:
    """Put the household's unpaid bills, and ¥1,000 more for bills issued later, in its wallet:
    the demo pays from it."""
    unpaid = session.scalar(
        select(func.coalesce(func.sum(Bill.amount_fen), 0)).where(
            Bill.account_id.in_(account_ids), Bill.status != "paid"
        )
    )
    amount = int(unpaid or 0) + 100_000
    credit_wallet(session, "cli", household_no, amount, "CNY", f"demo-{household_no}", "shop")


def _settle_history(session: Session, account_id: str, keep_unpaid: int, at: int) -> None:
    """Mark all but the newest ``keep_unpaid`` bills as paid (paid before the gateway existed)."""
    bills = list(
        session.scalars(select(Bill).where(Bill.account_id == account_id).order_by(Bill.period))
    )
    settled = bills[: len(bills) - keep_unpaid] if keep_unpaid else bills
    for bill in settled:
        due = datetime.fromisoformat(bill.due_date).replace(tzinfo=UTC)
        bill.status, bill.paid_at = "paid", min(at, int(due.timestamp()) - 86400 * 3)
