"""The gateway's schema. Times are integer Unix seconds (UTC); money is integer fen + currency.

Exactly-once rests on constraints, not only on code: one payment taking money per bill (partial
unique index), one use of each (dongle, counter), one payment per challenge.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Household(Base):
    __tablename__ = "households"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    # 'home', or 'shop' (代售点): a shop sells prepaid electricity to any account from its
    # wallet (its float, 备付金) and earns commission_bp basis points of each sale (gateway.shop).
    kind: Mapped[str] = mapped_column(String(8), default="home", server_default="home")
    commission_bp: Mapped[int | None] = mapped_column(Integer)


class Biller(Base):
    __tablename__ = "billers"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    utility: Mapped[str] = mapped_column(String(16))
    # Where the dispatcher sends this utility's write-off notifications; None: not sent yet.
    notify_url: Mapped[str | None] = mapped_column(String(300))


class UtilityAccount(Base):
    __tablename__ = "utility_accounts"
    __table_args__ = (UniqueConstraint("utility", "account_no", name="uq_account_utility_no"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    biller_code: Mapped[str] = mapped_column(ForeignKey("billers.code"))
    utility: Mapped[str] = mapped_column(String(16))
    account_no: Mapped[str] = mapped_column(String(32))
    holder_name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(8))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    bound_at: Mapped[int | None] = mapped_column(BigInteger)
    # gateway.bind_codes' salted hash of the code printed on the bills; None until the utility
    # sends one (accounts imported before bind codes existed can only be bound by name).
    bind_code_hash: Mapped[str | None] = mapped_column(String(160))
    # Set when the utility refused a write-off because the account is closed (销户): its bills
    # are then refused before the PIN instead of being paid, refused and refunded again.
    closed_at: Mapped[int | None] = mapped_column(BigInteger)


class BindFailure(Base):
    """A wrong holder name or bind code a household sent for an account; recent ones pause the
    household, and an account many households guess at (gateway.ratelimit)."""

    __tablename__ = "bind_failures"
    __table_args__ = (
        Index("ix_bind_failure_household_at", "household_id", "at"),
        Index("ix_bind_failure_account_at", "account_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    # None on failures counted before migration 0003 (they still count for the household).
    account_id: Mapped[str | None] = mapped_column(ForeignKey("utility_accounts.id"))
    at: Mapped[int] = mapped_column(BigInteger)


class Bill(Base):
    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("account_id", "bill_ref", name="uq_bill_account_ref"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("utility_accounts.id"), index=True)
    bill_ref: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(7))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    # 'unpaid' | 'paid' | 'void': a purchase bill replaced by a newer purchase before it was paid,
    # or whose purchase was reversed; its payment can never be authorized.
    status: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[int | None] = mapped_column(BigInteger)
    payment_id: Mapped[str | None] = mapped_column(String(40))
    # 'bill' (the utility's bill) or 'purchase' (the one-off bill of a prepaid purchase, which
    # bill lists and imports never show).
    kind: Mapped[str] = mapped_column(String(16), server_default=text("'bill'"), default="bill")


class Usage(Base):
    __tablename__ = "usage"
    account_id: Mapped[str] = mapped_column(ForeignKey("utility_accounts.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Dongle(Base):
    __tablename__ = "dongles"
    dongle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    key_rev: Mapped[int] = mapped_column(BigInteger)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    # Highest payment counter accepted from this dongle, over all its keys: counters never go back.
    last_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_at: Mapped[int] = mapped_column(BigInteger)
    activated_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    revoke_reason: Mapped[str | None] = mapped_column(String(200))


class Challenge(Base):
    """Single-use challenges for device sessions, dongle activation and attestation nonces."""

    __tablename__ = "challenges"
    challenge: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    dongle_id: Mapped[str | None] = mapped_column(String(64))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class DeviceSession(Base):
    __tablename__ = "device_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dongle_id: Mapped[str] = mapped_column(ForeignKey("dongles.dongle_id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


PAYMENT_TAKEN_SQL = "status IN ('processing', 'succeeded', 'credited')"


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("dongle_id", "counter", name="uq_payment_dongle_counter"),
        # One bill, at most one payment that took or is taking its money.
        Index(
            "uq_payment_bill_taken",
            "bill_id",
            unique=True,
            sqlite_where=text(PAYMENT_TAKEN_SQL),
            postgresql_where=text(PAYMENT_TAKEN_SQL),
        ),
        Index("ix_payment_household_created", "household_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    challenge: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    biller_code: Mapped[str] = mapped_column(String(64))
    account_no: Mapped[str] = mapped_column(String(32))
    bill_ref: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    succeeded_at: Mapped[int | None] = mapped_column(BigInteger)
    dongle_id: Mapped[str | None] = mapped_column(String(64))
    key_rev: Mapped[int | None] = mapped_column(BigInteger)
    counter: Mapped[int | None] = mapped_column(BigInteger)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    # What the household's screen said when it confirmed (protocol/display.py), and its SHA-256
    # the dongle signed: kept with the payment to answer "what did I agree to?" later.
    display_text: Mapped[str | None] = mapped_column(Text)
    display_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The wallet or mandate that pays; None on payments made before the ledger (no posting).
    funding_source_id: Mapped[str | None] = mapped_column(ForeignKey("funding_sources.id"))
    # The utility's answer to the write-off (gateway.writeoff): its reference once credited,
    # or the reason it refused and when the money went back.
    utility_ref: Mapped[str | None] = mapped_column(String(64))
    credited_at: Mapped[int | None] = mapped_column(BigInteger)
    refunded_at: Mapped[int | None] = mapped_column(BigInteger)
    refund_reason: Mapped[str | None] = mapped_column(String(200))
    # A shop's sale: the commission owed to the shop, fixed when the sale is created; posted
    # with the payment and returned with its refund (gateway.funding.commission). None otherwise.
    commission_fen: Mapped[int | None] = mapped_column(BigInteger)


class Receipt(Base):
    __tablename__ = "receipts"
    receipt_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), unique=True)
    body: Mapped[str] = mapped_column(
        Text
    )  # the Receipt JSON object as answered, signature included


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(80))
    details: Mapped[str] = mapped_column(Text)


class LedgerAccount(Base):
    """An account of the double-entry ledger (gateway.ledger). A balance is the sum of the
    account's transfers; wallets also keep that sum in ``balance_fen``, moved in the same
    transaction as each transfer so that a payment need not sum the wallet's history
    (``ledger check`` proves the two agree). NULL for the other kinds."""

    __tablename__ = "ledger_accounts"
    code: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[int] = mapped_column(BigInteger)
    balance_fen: Mapped[int | None] = mapped_column(BigInteger)


class LedgerTransfer(Base):
    """One movement of money from a debit to a credit account. Only ever inserted: a correction
    is a new reversing transfer. ``digest`` covers the other fields so an edit shows."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        # A retried posting finds its own row instead of posting twice.
        UniqueConstraint(
            "kind", "ref", "debit_account", "credit_account", name="uq_ledger_transfer_posting"
        ),
        CheckConstraint("amount_fen > 0", name="ck_ledger_transfer_positive"),
        Index("ix_ledger_transfer_ref", "ref"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(40), index=True)
    debit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.code"), index=True)
    credit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.code"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))


class Mandate(Base):
    """A household's direct-debit mandate (代扣协议) on a bank card."""

    __tablename__ = "mandates"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    card_masked: Mapped[str] = mapped_column(String(32))
    bank_token: Mapped[str] = mapped_column(String(128))
    per_payment_limit_fen: Mapped[int] = mapped_column(BigInteger)
    monthly_limit_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)


class FundingSource(Base):
    """Where a household's payments take money from: its wallet, or a mandate."""

    __tablename__ = "funding_sources"
    __table_args__ = (
        Index(
            "uq_funding_source_wallet",
            "household_id",
            unique=True,
            sqlite_where=text("kind = 'wallet'"),
            postgresql_where=text("kind = 'wallet'"),
        ),
        Index(
            "uq_funding_source_default",
            "household_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(Boolean)
    mandate_id: Mapped[str | None] = mapped_column(ForeignKey("mandates.id"), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A message to another system, written in the transaction of the state change that causes
    it and delivered later by ``tvpay-gateway dispatch`` (gateway.outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("topic", "key", name="uq_outbox_topic_key"),
        Index("ix_outbox_due", "delivered_at", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[int | None] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))


class Reconciliation(Base):
    """One reconciled file (utility statement or bank settlement) and what it showed; written
    once, in the transaction that applies its automatic resolutions. The same file for the same
    scope and day is reconciled once (unique), so running it again shows the first report."""

    __tablename__ = "reconciliations"
    __table_args__ = (
        UniqueConstraint("source", "scope", "day", "file_sha256", name="uq_reconciliation_file"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "utility" | "bank"
    scope: Mapped[str] = mapped_column(String(64))  # the biller; "" for the bank
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD, UTC
    file_name: Mapped[str] = mapped_column(String(200))
    file_sha256: Mapped[str] = mapped_column(String(64))
    lines: Mapped[int] = mapped_column(BigInteger)
    counts: Mapped[str] = mapped_column(Text)  # JSON {kind: n}
    findings: Mapped[str] = mapped_column(Text)  # JSON [{kind, key, line, detail}], capped
    resolved: Mapped[int] = mapped_column(Integer)  # automatic resolutions applied
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))


PURCHASE_PENDING_SQL = "fulfilment = 'pending'"


class PrepaidRules(Base):
    """A utility's limits and tiered tariff for prepaid purchases (gateway.prepaid.rules)."""

    __tablename__ = "prepaid_rules"
    biller_code: Mapped[str] = mapped_column(ForeignKey("billers.code"), primary_key=True)
    multiple_of_fen: Mapped[int] = mapped_column(BigInteger)
    min_fen: Mapped[int] = mapped_column(BigInteger)
    max_purchase_fen: Mapped[int] = mapped_column(BigInteger)
    max_balance_fen: Mapped[int] = mapped_column(BigInteger)
    presets: Mapped[str] = mapped_column(Text)  # JSON list of fen amounts
    fulfil_window_seconds: Mapped[int] = mapped_column(BigInteger)
    # JSON [{"upto_wh": int | null, "price_milli_fen_per_kwh": int}, ...], lowest tier first.
    tariff: Mapped[str] = mapped_column(Text)


class PrepaidMeter(Base):
    """A prepaid electricity meter on a utility account: remote (balance at the utility), card
    (IC purchase card) or token (STS)."""

    __tablename__ = "prepaid_meters"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("utility_accounts.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    meter_no: Mapped[str] = mapped_column(String(32))
    card_serial: Mapped[str | None] = mapped_column(String(16))  # hex
    # The purchase count the gateway knows the card holds.
    card_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    sts_sgc: Mapped[int | None] = mapped_column(Integer)
    sts_ti: Mapped[int | None] = mapped_column(Integer)
    sts_krn: Mapped[int | None] = mapped_column(Integer)
    # Highest STS token identifier issued for this meter: the next one is always greater.
    last_tid: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    last_balance_fen: Mapped[int | None] = mapped_column(BigInteger)
    last_balance_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Purchase(Base):
    """A prepaid purchase: a purchase bill, its payment, and the meter credit that fulfils it."""

    __tablename__ = "purchases"
    __table_args__ = (
        # Never two purchases waiting for fulfilment on one meter.
        Index(
            "uq_purchase_meter_pending",
            "meter_id",
            unique=True,
            sqlite_where=text(PURCHASE_PENDING_SQL),
            postgresql_where=text(PURCHASE_PENDING_SQL),
        ),
        # A token identifier is used once per meter.
        Index(
            "uq_purchase_meter_tid",
            "meter_id",
            "tid",
            unique=True,
            sqlite_where=text("tid IS NOT NULL"),
            postgresql_where=text("tid IS NOT NULL"),
        ),
        Index("ix_purchase_household_created", "household_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("prepaid_meters.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), unique=True)
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    energy_wh: Mapped[int] = mapped_column(BigInteger)
    quote: Mapped[str] = mapped_column(Text)  # JSON: the quote the household was shown
    # 'awaiting_payment' | 'pending' | 'done' | 'reversed' | 'void'
    fulfilment: Mapped[str] = mapped_column(String(16))
    card_count: Mapped[int | None] = mapped_column(BigInteger)  # the count N+1 this one writes
    token: Mapped[str | None] = mapped_column(String(20))
    tid: Mapped[int | None] = mapped_column(BigInteger)
    needs_card: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fulfil_by: Mapped[int | None] = mapped_column(BigInteger)
    fulfilled_at: Mapped[int | None] = mapped_column(BigInteger)
    reversed_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class CardIssue(Base):
    """A write-card block the vending side handed out for a purchase (gateway.prepaid.cards)."""

    __tablename__ = "card_issues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purchase_id: Mapped[str] = mapped_column(ForeignKey("purchases.id"), index=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    count: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    box: Mapped[str | None] = mapped_column(String(64))  # the dongle id that asked


class CardRead(Base):
    """A purchase card as a box read it during a card session."""

    __tablename__ = "card_reads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("prepaid_meters.id"), index=True)
    count: Mapped[int] = mapped_column(BigInteger)
    writeback: Mapped[str | None] = mapped_column(Text)  # hex
    read_at: Mapped[int] = mapped_column(BigInteger)
    dongle_id: Mapped[str | None] = mapped_column(String(64))
