"""shops (代售点): a household row of kind 'shop' with a commission per sale, and each sale's
commission kept on its payment (so a refund returns exactly what was posted)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("households") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(8), nullable=False, server_default=sa.text("'home'"))
        )
        batch.add_column(sa.Column("commission_bp", sa.Integer(), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("commission_fen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("commission_fen")
    with op.batch_alter_table("households") as batch:
        batch.drop_column("commission_bp")
        batch.drop_column("kind")
