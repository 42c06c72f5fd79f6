"""ledger and funding: double-entry accounts and transfers, funding sources, mandates

One bill may now have at most one payment that took or is taking money (processing, succeeded,
credited): the partial unique index on succeeded payments becomes one on those three states.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TAKEN = "status IN ('processing', 'succeeded', 'credited')"


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(length=40), nullable=False),
        sa.Column("debit_account", sa.String(length=80), nullable=False),
        sa.Column("credit_account", sa.String(length=80), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["debit_account"],
            ["ledger_accounts.code"],
            name=op.f("fk_ledger_transfers_debit_account_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account"],
            ["ledger_accounts.code"],
            name=op.f("fk_ledger_transfers_credit_account_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.CheckConstraint("amount_fen > 0", name="ck_ledger_transfer_positive"),
        sa.UniqueConstraint(
            "kind", "ref", "debit_account", "credit_account", name="uq_ledger_transfer_posting"
        ),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transfers_txn_id"), ["txn_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_transfers_debit_account"), ["debit_account"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_transfers_credit_account"), ["credit_account"], unique=False
        )
        batch_op.create_index("ix_ledger_transfer_ref", ["ref"], unique=False)

    op.create_table(
        "mandates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("card_masked", sa.String(length=32), nullable=False),
        sa.Column("bank_token", sa.String(length=128), nullable=False),
        sa.Column("per_payment_limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("monthly_limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_mandates_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandates")),
    )
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mandates_household_id"), ["household_id"], unique=False
        )

    op.create_table(
        "funding_sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("mandate_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_funding_sources_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["mandate_id"], ["mandates.id"], name=op.f("fk_funding_sources_mandate_id_mandates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_sources")),
        sa.UniqueConstraint("mandate_id", name=op.f("uq_funding_sources_mandate_id")),
    )
    with op.batch_alter_table("funding_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funding_sources_household_id"), ["household_id"], unique=False
        )
        # One wallet and one default per household, held by the database, not only by code.
        batch_op.create_index(
            "uq_funding_source_wallet",
            ["household_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'wallet'"),
            postgresql_where=sa.text("kind = 'wallet'"),
        )
        batch_op.create_index(
            "uq_funding_source_default",
            ["household_id"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        # Null on payments made before the ledger: they carry no posting.
        batch_op.add_column(sa.Column("funding_source_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_payments_funding_source_id_funding_sources"),
            "funding_sources",
            ["funding_source_id"],
            ["id"],
        )
        batch_op.drop_index("uq_payment_bill_succeeded")
        batch_op.create_index(
            "uq_payment_bill_taken",
            ["bill_id"],
            unique=True,
            sqlite_where=sa.text(_TAKEN),
            postgresql_where=sa.text(_TAKEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("uq_payment_bill_taken")
        batch_op.create_index(
            "uq_payment_bill_succeeded",
            ["bill_id"],
            unique=True,
            sqlite_where=sa.text("status = 'succeeded'"),
            postgresql_where=sa.text("status = 'succeeded'"),
        )
        batch_op.drop_constraint(
            batch_op.f("fk_payments_funding_source_id_funding_sources"), type_="foreignkey"
        )
        batch_op.drop_column("funding_source_id")
    op.drop_table("funding_sources")
    op.drop_table("mandates")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
