"""utility accounts the utility closed (销户): their bills are refused before the PIN

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("utility_accounts") as batch:
        batch.add_column(sa.Column("closed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("utility_accounts") as batch:
        batch.drop_column("closed_at")
