"""confirmation text: what the household was shown, and its signed SHA-256, per payment

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Payments authorized before this revision were signed without a confirmation text: null.
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("display_hash", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("display_hash")
        batch_op.drop_column("display_text")
