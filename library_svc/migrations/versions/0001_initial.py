"""library schema: initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:49:36.769489

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "library"')
    op.create_table(
        "playlists",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_collaborative", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("follower_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("item_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("snapshot_version", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("cover_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name=op.f("ck_playlists_name_length")),
        sa.CheckConstraint(
            "description IS NULL OR char_length(description) <= 300",
            name=op.f("ck_playlists_description_length"),
        ),
        sa.CheckConstraint("follower_count >= 0", name=op.f("ck_playlists_follower_count_nonneg")),
        sa.CheckConstraint("item_count >= 0", name=op.f("ck_playlists_item_count_nonneg")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playlists")),
        schema="library",
    )
    op.create_index(
        "ix_playlists_owner_id_created_at",
        "playlists",
        ["owner_id", sa.literal_column("created_at DESC")],
        unique=False,
        schema="library",
    )
    op.create_table(
        "saved_items",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("item_type", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "item_type IN ('track', 'album', 'artist', 'playlist')", name=op.f("ck_saved_items_item_type")
        ),
        sa.PrimaryKeyConstraint("user_id", "item_type", "item_id", name=op.f("pk_saved_items")),
        schema="library",
    )
    op.create_index(
        "ix_saved_items_user_id_item_type_saved_at",
        "saved_items",
        ["user_id", "item_type", sa.literal_column("saved_at DESC")],
        unique=False,
        schema="library",
    )
    op.create_table(
        "playlist_collaborators",
        sa.Column("playlist_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["library.playlists.id"],
            name=op.f("fk_playlist_collaborators_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("playlist_id", "user_id", name=op.f("pk_playlist_collaborators")),
        schema="library",
    )
    op.create_index(
        "ix_playlist_collaborators_user_id",
        "playlist_collaborators",
        ["user_id"],
        unique=False,
        schema="library",
    )
    op.create_table(
        "playlist_followers",
        sa.Column("playlist_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("followed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["library.playlists.id"],
            name=op.f("fk_playlist_followers_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("playlist_id", "user_id", name=op.f("pk_playlist_followers")),
        schema="library",
    )
    op.create_index(
        "ix_playlist_followers_user_id_followed_at",
        "playlist_followers",
        ["user_id", sa.literal_column("followed_at DESC")],
        unique=False,
        schema="library",
    )
    op.create_table(
        "playlist_items",
        sa.Column("playlist_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_playlist_items_position_nonneg")),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["library.playlists.id"],
            name=op.f("fk_playlist_items_playlist_id_playlists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("playlist_id", "track_id", name=op.f("pk_playlist_items")),
        sa.UniqueConstraint(
            "playlist_id",
            "position",
            deferrable=True,
            initially="DEFERRED",
            name=op.f("uq_playlist_items_playlist_id_position"),
        ),
        schema="library",
    )
    op.create_index(
        "ix_playlist_items_track_id", "playlist_items", ["track_id"], unique=False, schema="library"
    )


def downgrade() -> None:
    op.drop_index("ix_playlist_items_track_id", table_name="playlist_items", schema="library")
    op.drop_table("playlist_items", schema="library")
    op.drop_index(
        "ix_playlist_followers_user_id_followed_at", table_name="playlist_followers", schema="library"
    )
    op.drop_table("playlist_followers", schema="library")
    op.drop_index("ix_playlist_collaborators_user_id", table_name="playlist_collaborators", schema="library")
    op.drop_table("playlist_collaborators", schema="library")
    op.drop_index("ix_saved_items_user_id_item_type_saved_at", table_name="saved_items", schema="library")
    op.drop_table("saved_items", schema="library")
    op.drop_index("ix_playlists_owner_id_created_at", table_name="playlists", schema="library")
    op.drop_table("playlists", schema="library")
    # The schema stays: it holds this service's alembic_version table.
