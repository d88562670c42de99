"""catalog schema: exact-name indexes for search

Search ranks a name that is exactly the query first, whatever its popularity. Finding those
among the matches of a common word used to mean reading every match; these btree indexes on
the stripped search vector answer "names equal to the query, most popular first" directly.
Additive only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("artists", "albums", "tracks")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"CREATE INDEX ix_{table}_exact_name ON catalog.{table} "
            "(strip(search_vector), popularity DESC, id)"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP INDEX catalog.ix_{table}_exact_name")
