"""playback schema: offline devices keep their type and the X25519 public key licenses are wrapped for

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "offline_devices", sa.Column("device_type", sa.String(length=32), nullable=True), schema="playback"
    )
    op.add_column(
        "offline_devices", sa.Column("public_key", sa.LargeBinary(), nullable=True), schema="playback"
    )


def downgrade() -> None:
    op.drop_column("offline_devices", "public_key", schema="playback")
    op.drop_column("offline_devices", "device_type", schema="playback")
