"""wallet balances on their ledger account rows, moved with each transfer (gateway.ledger.store)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.add_column(sa.Column("balance_fen", sa.BigInteger(), nullable=True))
    # Every wallet starts from the sum of the transfers it already has.
    op.execute(
        "UPDATE ledger_accounts SET balance_fen = COALESCE(("
        " SELECT SUM(CASE WHEN t.credit_account = ledger_accounts.code THEN t.amount_fen"
        " ELSE -t.amount_fen END) FROM ledger_transfers t"
        " WHERE t.credit_account = ledger_accounts.code"
        " OR t.debit_account = ledger_accounts.code), 0)"
        " WHERE kind = 'wallet'"
    )


def downgrade() -> None:
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.drop_column("balance_fen")
