"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "billers",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("utility", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_billers")),
    )
    op.create_table(
        "challenges",
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("dongle_id", sa.String(length=64), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("challenge", name=op.f("pk_challenges")),
    )
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_challenges_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_no", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint("household_no", name=op.f("uq_households_household_no")),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("name", name=op.f("uq_staff_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_token_hash")),
    )
    op.create_table(
        "dongles",
        sa.Column("dongle_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key_rev", sa.BigInteger(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("last_counter", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("activated_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_dongles_household_id_households")
        ),
        sa.PrimaryKeyConstraint("dongle_id", name=op.f("pk_dongles")),
    )
    with op.batch_alter_table("dongles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dongles_household_id"), ["household_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_idempotency_keys_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("household_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "utility_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("biller_code", sa.String(length=64), nullable=False),
        sa.Column("utility", sa.String(length=16), nullable=False),
        sa.Column("account_no", sa.String(length=32), nullable=False),
        sa.Column("holder_name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("bound_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["biller_code"], ["billers.code"], name=op.f("fk_utility_accounts_biller_code_billers")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_utility_accounts_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_accounts")),
        sa.UniqueConstraint("utility", "account_no", name="uq_account_utility_no"),
    )
    with op.batch_alter_table("utility_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_utility_accounts_household_id"), ["household_id"], unique=False
        )

    op.create_table(
        "bills",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("bill_ref", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.String(length=10), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["utility_accounts.id"],
            name=op.f("fk_bills_account_id_utility_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("account_id", "bill_ref", name="uq_bill_account_ref"),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bills_account_id"), ["account_id"], unique=False)

    op.create_table(
        "device_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("dongle_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dongle_id"], ["dongles.dongle_id"], name=op.f("fk_device_sessions_dongle_id_dongles")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_device_sessions_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_device_sessions")),
    )
    with op.batch_alter_table("device_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_sessions_dongle_id"), ["dongle_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_sessions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "usage",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("quantity_milli", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["utility_accounts.id"],
            name=op.f("fk_usage_account_id_utility_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "month", name=op.f("pk_usage")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("biller_code", sa.String(length=64), nullable=False),
        sa.Column("account_no", sa.String(length=32), nullable=False),
        sa.Column("bill_ref", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("succeeded_at", sa.BigInteger(), nullable=True),
        sa.Column("dongle_id", sa.String(length=64), nullable=True),
        sa.Column("key_rev", sa.BigInteger(), nullable=True),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_payments_bill_id_bills")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_payments_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("challenge", name=op.f("uq_payments_challenge")),
        sa.UniqueConstraint("dongle_id", "counter", name="uq_payment_dongle_counter"),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_household_created", ["household_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payments_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index(
            "uq_payment_bill_succeeded",
            ["bill_id"],
            unique=True,
            sqlite_where=sa.text("status = 'succeeded'"),
            postgresql_where=sa.text("status = 'succeeded'"),
        )

    op.create_table(
        "receipts",
        sa.Column("receipt_no", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_receipts_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("receipt_no", name=op.f("pk_receipts")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_receipts_payment_id")),
    )


def downgrade() -> None:
    op.drop_table("receipts")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payment_bill_succeeded",
            sqlite_where=sa.text("status = 'succeeded'"),
            postgresql_where=sa.text("status = 'succeeded'"),
        )
        batch_op.drop_index(batch_op.f("ix_payments_bill_id"))
        batch_op.drop_index("ix_payment_household_created")

    op.drop_table("payments")
    op.drop_table("usage")
    with op.batch_alter_table("device_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_device_sessions_dongle_id"))

    op.drop_table("device_sessions")
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bills_account_id"))

    op.drop_table("bills")
    with op.batch_alter_table("utility_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_utility_accounts_household_id"))

    op.drop_table("utility_accounts")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("dongles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dongles_household_id"))

    op.drop_table("dongles")
    op.drop_table("staff")
    op.drop_table("households")
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_challenges_expires_at"))

    op.drop_table("challenges")
    op.drop_table("billers")
    op.drop_table("audit_log")
