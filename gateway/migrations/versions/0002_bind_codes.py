"""bind codes: a hashed 6-digit code per utility account, and the wrong-code log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing accounts get no code: they bind by holder name until the utility imports one.
    with op.batch_alter_table("utility_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bind_code_hash", sa.String(length=160), nullable=True))
    op.create_table(
        "bind_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_bind_failures_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bind_failures")),
    )
    with op.batch_alter_table("bind_failures", schema=None) as batch_op:
        batch_op.create_index("ix_bind_failure_household_at", ["household_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bind_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_bind_failure_household_at")
    op.drop_table("bind_failures")
    with op.batch_alter_table("utility_accounts", schema=None) as batch_op:
        batch_op.drop_column("bind_code_hash")
