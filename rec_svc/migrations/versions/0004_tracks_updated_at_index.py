"""rec schema: index rec.tracks by updated_at, for each replica's sync of live track changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 14:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Expand only: an index, which the previous release's code ignores. Built concurrently (outside
    # the migration's transaction), so writers of rec.tracks are not blocked while it builds.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_tracks_updated_at",
            "tracks",
            ["updated_at"],
            schema="rec",
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_tracks_updated_at",
            table_name="tracks",
            schema="rec",
            postgresql_concurrently=True,
            if_exists=True,
        )
