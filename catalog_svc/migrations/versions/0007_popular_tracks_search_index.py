"""catalog schema: a full-text index over the popular tracks alone

Search counts a word's title matches up to its cap (1,051 rows) before it ranks them. A GIN index
answers with a bitmap of every match, so a word in 27,000 of a million titles built all 27,000
entries (7-19 ms) to count 1,051. Search now reads the popular band first, from this index: a
tenth of the tracks in a skewed catalog, so a common word passes the cap there and the full
index is never read for it. See ``POPULAR`` in ``catalog_svc.search_store``, which must match
the predicate.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 20:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_tracks_search_vector_popular ON catalog.tracks "
        "USING gin (search_vector) WHERE popularity >= 70"
    )


def downgrade() -> None:
    op.execute("DROP INDEX catalog.ix_tracks_search_vector_popular")
