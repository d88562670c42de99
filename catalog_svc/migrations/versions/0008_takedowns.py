"""catalog schema: takedowns

One row per withdrawn track, album or artist. Reads leave out an entity whose own id, or whose
album's or leading artist's id, has a row here (``catalog_svc.store``), so a takedown and its
restore change no catalog row and keep nothing to recompute. Entity ids are UUIDs, unique across
the three tables, so one primary key serves every kind.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "takedowns",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("entity_type", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("taken_down_by", sa.Uuid(), nullable=False),
        sa.Column("by_admin", sa.Boolean(), nullable=False),
        sa.Column(
            "taken_down_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "entity_type IN ('track', 'album', 'artist')", name=op.f("ck_takedowns_entity_type")
        ),
        sa.PrimaryKeyConstraint("entity_id", name=op.f("pk_takedowns")),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_table("takedowns", schema="catalog")
