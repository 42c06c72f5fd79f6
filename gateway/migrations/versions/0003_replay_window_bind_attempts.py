"""replay window and bind attempts: failed ownership proofs name the account they were for

The replay window needs no new column: the highest counter is ``dongles.last_counter`` and the
used ones are the succeeded payments' (dongle_id, counter), already unique.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Failures recorded before this revision have no account: they count for their household only.
    with op.batch_alter_table("bind_failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_bind_failures_account_id_utility_accounts"),
            "utility_accounts",
            ["account_id"],
            ["id"],
        )
        batch_op.create_index("ix_bind_failure_account_at", ["account_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bind_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_bind_failure_account_at")
        batch_op.drop_constraint(
            batch_op.f("fk_bind_failures_account_id_utility_accounts"), type_="foreignkey"
        )
        batch_op.drop_column("account_id")
