"""outbox and write-off: messages to deliver, billers' notify URL, the utility's answer per payment

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("topic", "key", name="uq_outbox_topic_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["delivered_at", "next_attempt_at"], unique=False)
    with op.batch_alter_table("billers", schema=None) as batch_op:
        # Null until the operator (or the emulator) says where the utility listens.
        batch_op.add_column(sa.Column("notify_url", sa.String(length=300), nullable=True))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("utility_ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("credited_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("refunded_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("refund_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("refund_reason")
        batch_op.drop_column("refunded_at")
        batch_op.drop_column("credited_at")
        batch_op.drop_column("utility_ref")
    with op.batch_alter_table("billers", schema=None) as batch_op:
        batch_op.drop_column("notify_url")
    op.drop_table("outbox")
