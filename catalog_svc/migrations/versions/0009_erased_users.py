"""catalog schema: tombstones of erased users

One row per deleted user, by the SHA-256 of their id's 16 bytes, written when the user's data is
erased here: consumers leave out late events of theirs (meshkit.tombstones). A digest matches an
id one already holds and names nobody by itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_users",
        sa.Column("user_digest", sa.LargeBinary(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_digest", name=op.f("pk_erased_users")),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_table("erased_users", schema="catalog")
