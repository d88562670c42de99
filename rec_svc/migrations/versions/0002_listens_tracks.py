"""rec schema: rec's own copies of counted streams and catalog track facts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listens",
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column(
            "artist_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False
        ),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("played_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("weight", sa.REAL(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_listens")),
        schema="rec",
    )
    op.create_index("ix_listens_counted_at", "listens", ["counted_at"], unique=False, schema="rec")
    op.create_index(
        "ix_listens_user_id_counted_at", "listens", ["user_id", "counted_at"], unique=False, schema="rec"
    )
    op.create_table(
        "tracks",
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column(
            "artist_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False
        ),
        sa.Column(
            "genres", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("popularity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("track_id", name=op.f("pk_tracks")),
        schema="rec",
    )


def downgrade() -> None:
    op.drop_table("tracks", schema="rec")
    op.drop_index("ix_listens_user_id_counted_at", table_name="listens", schema="rec")
    op.drop_index("ix_listens_counted_at", table_name="listens", schema="rec")
    op.drop_table("listens", schema="rec")
