"""prepaid electricity: purchase bills, rules and tariffs, meters, purchases, card sessions

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bills", schema=None) as batch_op:
        # Every bill before prepaid purchases is the utility's own bill.
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=16), server_default=sa.text("'bill'"), nullable=False
            )
        )
    op.create_table(
        "prepaid_rules",
        sa.Column("biller_code", sa.String(length=64), nullable=False),
        sa.Column("multiple_of_fen", sa.BigInteger(), nullable=False),
        sa.Column("min_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_purchase_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("presets", sa.Text(), nullable=False),
        sa.Column("fulfil_window_seconds", sa.BigInteger(), nullable=False),
        sa.Column("tariff", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["biller_code"], ["billers.code"], name=op.f("fk_prepaid_rules_biller_code_billers")
        ),
        sa.PrimaryKeyConstraint("biller_code", name=op.f("pk_prepaid_rules")),
    )
    op.create_table(
        "prepaid_meters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("meter_no", sa.String(length=32), nullable=False),
        sa.Column("card_serial", sa.String(length=16), nullable=True),
        sa.Column("card_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("sts_sgc", sa.Integer(), nullable=True),
        sa.Column("sts_ti", sa.Integer(), nullable=True),
        sa.Column("sts_krn", sa.Integer(), nullable=True),
        sa.Column("last_tid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_balance_fen", sa.BigInteger(), nullable=True),
        sa.Column("last_balance_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["utility_accounts.id"],
            name=op.f("fk_prepaid_meters_account_id_utility_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepaid_meters")),
        sa.UniqueConstraint("account_id", name=op.f("uq_prepaid_meters_account_id")),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("meter_id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("bill_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("fulfilment", sa.String(length=16), nullable=False),
        sa.Column("card_count", sa.BigInteger(), nullable=True),
        sa.Column("token", sa.String(length=20), nullable=True),
        sa.Column("tid", sa.BigInteger(), nullable=True),
        sa.Column("needs_card", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fulfil_by", sa.BigInteger(), nullable=True),
        sa.Column("fulfilled_at", sa.BigInteger(), nullable=True),
        sa.Column("reversed_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["prepaid_meters.id"], name=op.f("fk_purchases_meter_id_prepaid_meters")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_purchases_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_purchases_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_purchases_bill_id_bills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_purchases_payment_id")),
        sa.UniqueConstraint("bill_id", name=op.f("uq_purchases_bill_id")),
    )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchases_meter_id"), ["meter_id"], unique=False)
        batch_op.create_index(
            "ix_purchase_household_created", ["household_id", "created_at"], unique=False
        )
        # Never two purchases waiting for fulfilment on one meter, held by the database.
        batch_op.create_index(
            "uq_purchase_meter_pending",
            ["meter_id"],
            unique=True,
            sqlite_where=sa.text("fulfilment = 'pending'"),
            postgresql_where=sa.text("fulfilment = 'pending'"),
        )
        # A token identifier is issued once per meter.
        batch_op.create_index(
            "uq_purchase_meter_tid",
            ["meter_id", "tid"],
            unique=True,
            sqlite_where=sa.text("tid IS NOT NULL"),
            postgresql_where=sa.text("tid IS NOT NULL"),
        )
    op.create_table(
        "card_issues",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("purchase_id", sa.String(length=40), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("box", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_card_issues_purchase_id_purchases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_issues")),
    )
    with op.batch_alter_table("card_issues", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_card_issues_purchase_id"), ["purchase_id"], unique=False
        )
    op.create_table(
        "card_reads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("meter_id", sa.String(length=40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("writeback", sa.Text(), nullable=True),
        sa.Column("read_at", sa.BigInteger(), nullable=False),
        sa.Column("dongle_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["prepaid_meters.id"], name=op.f("fk_card_reads_meter_id_prepaid_meters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_reads")),
    )
    with op.batch_alter_table("card_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_reads_meter_id"), ["meter_id"], unique=False)


def downgrade() -> None:
    op.drop_table("card_reads")
    op.drop_table("card_issues")
    op.drop_table("purchases")
    op.drop_table("prepaid_meters")
    op.drop_table("prepaid_rules")
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_column("kind")
