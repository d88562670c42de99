"""auth schema: account deletions, their confirmations, and the outbox of users.deleted.v1

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_deletions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_deletions")),
        schema="auth",
    )
    op.create_table(
        "deletion_confirmations",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column(
            "confirmed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth.user_deletions.user_id"],
            name=op.f("fk_deletion_confirmations_user_id_user_deletions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "service", name=op.f("pk_deletion_confirmations")),
        schema="auth",
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        schema="auth",
    )


def downgrade() -> None:
    op.drop_table("outbox_events", schema="auth")
    op.drop_table("deletion_confirmations", schema="auth")
    op.drop_table("user_deletions", schema="auth")
