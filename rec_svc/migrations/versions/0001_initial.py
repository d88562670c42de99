"""rec schema: initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:49:37.682472

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "rec"')
    op.create_table(
        "discover_weekly",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "generated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column(
            "track_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_discover_weekly")),
        schema="rec",
    )
    op.create_table(
        "events_applied",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events_applied")),
        schema="rec",
    )
    op.create_index(
        "ix_events_applied_applied_at", "events_applied", ["applied_at"], unique=False, schema="rec"
    )
    op.create_table(
        "index_versions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=16), server_default=sa.text("'cosine'"), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("kind IN ('tracks', 'users')", name=op.f("ck_index_versions_kind")),
        sa.CheckConstraint("count >= 0", name=op.f("ck_index_versions_count_nonneg")),
        sa.CheckConstraint("dim > 0", name=op.f("ck_index_versions_dim_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_versions")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_index_versions_kind_version")),
        schema="rec",
    )
    op.create_index(
        "uq_index_versions_kind_active",
        "index_versions",
        ["kind"],
        unique=True,
        schema="rec",
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_index_versions_kind_active",
        table_name="index_versions",
        schema="rec",
        postgresql_where=sa.text("active"),
    )
    op.drop_table("index_versions", schema="rec")
    op.drop_index("ix_events_applied_applied_at", table_name="events_applied", schema="rec")
    op.drop_table("events_applied", schema="rec")
    op.drop_table("discover_weekly", schema="rec")
    # The schema stays: it holds this service's alembic_version table.
