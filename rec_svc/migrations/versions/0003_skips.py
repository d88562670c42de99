"""rec schema: skips from playback.events.v1, the negative side of the listening history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "skips",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("track_duration_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("weight", sa.REAL(), server_default=sa.text("-1"), nullable=False),
        sa.CheckConstraint("position_ms >= 0", name=op.f("ck_skips_position_ms_nonneg")),
        sa.CheckConstraint("weight < 0", name=op.f("ck_skips_weight_negative")),
        sa.PrimaryKeyConstraint("user_id", "idempotency_key", name=op.f("pk_skips")),
        schema="rec",
    )
    op.create_index("ix_skips_skipped_at", "skips", ["skipped_at"], unique=False, schema="rec")
    op.create_index(
        "ix_skips_user_id_skipped_at", "skips", ["user_id", "skipped_at"], unique=False, schema="rec"
    )


def downgrade() -> None:
    op.drop_index("ix_skips_user_id_skipped_at", table_name="skips", schema="rec")
    op.drop_index("ix_skips_skipped_at", table_name="skips", schema="rec")
    op.drop_table("skips", schema="rec")
