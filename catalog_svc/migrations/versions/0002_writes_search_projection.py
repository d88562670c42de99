"""catalog schema: album credits, richer album/artist fields, write idempotency, change outbox

Additive only (new tables, nullable or defaulted columns, new indexes), so code that predates
it keeps working against the new schema.

- ``album_artists``: every credited artist of an album (main artist at position 0), the
  album-level twin of ``track_artists``; ``albums.artist_id`` stays the main artist.
- ``artists.images`` / ``albums.images``: Spotify image lists (url, height, width);
  ``image_url`` / ``cover_url`` keep the first URL for readers that want one picture.
- ``albums.genres``, ``copyrights``, ``upc``, ``available_markets``: fields of the album object.
- ``applied_stream_events.counted_at``: event time of the counted stream, for popularity windows.
- ``write_requests``: request id -> created entity, so a retried write returns the first result.
- ``outbox_events``: catalog.changes.v1 events written in the write's transaction and deleted
  once Kafka acknowledged them, so a broker outage delays events instead of losing them.
- Indexes for search filters and ordering: ``albums.release_date``, ``tracks.popularity``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("artists", sa.Column("images", postgresql.JSONB(), nullable=True), schema="catalog")
    op.add_column("albums", sa.Column("images", postgresql.JSONB(), nullable=True), schema="catalog")
    op.add_column(
        "albums",
        sa.Column(
            "genres", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        schema="catalog",
    )
    op.add_column("albums", sa.Column("copyrights", postgresql.JSONB(), nullable=True), schema="catalog")
    op.add_column("albums", sa.Column("upc", sa.String(length=14), nullable=True), schema="catalog")
    op.add_column(
        "albums",
        sa.Column(
            "available_markets",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        schema="catalog",
    )
    op.create_index("ix_albums_release_date", "albums", ["release_date"], unique=False, schema="catalog")
    op.create_index(
        "ix_tracks_popularity",
        "tracks",
        [sa.literal_column("popularity DESC")],
        unique=False,
        schema="catalog",
    )
    op.add_column(
        "applied_stream_events",
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        schema="catalog",
    )
    op.create_index(
        "ix_applied_stream_events_counted_at",
        "applied_stream_events",
        ["counted_at"],
        unique=False,
        schema="catalog",
    )
    op.create_table(
        "album_artists",
        sa.Column("album_id", sa.Uuid(), nullable=False),
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_album_artists_position_nonneg")),
        sa.ForeignKeyConstraint(
            ["album_id"],
            ["catalog.albums.id"],
            name=op.f("fk_album_artists_album_id_albums"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["catalog.artists.id"],
            name=op.f("fk_album_artists_artist_id_artists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("album_id", "artist_id", name=op.f("pk_album_artists")),
        schema="catalog",
    )
    op.create_index(
        "ix_album_artists_artist_id", "album_artists", ["artist_id"], unique=False, schema="catalog"
    )
    op.create_table(
        "write_requests",
        sa.Column("caller_id", sa.Uuid(), nullable=False),
        sa.Column("rpc", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("caller_id", "rpc", "request_id", name=op.f("pk_write_requests")),
        schema="catalog",
    )
    op.create_index(
        "ix_write_requests_created_at", "write_requests", ["created_at"], unique=False, schema="catalog"
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_table("outbox_events", schema="catalog")
    op.drop_index("ix_write_requests_created_at", table_name="write_requests", schema="catalog")
    op.drop_table("write_requests", schema="catalog")
    op.drop_index("ix_album_artists_artist_id", table_name="album_artists", schema="catalog")
    op.drop_table("album_artists", schema="catalog")
    op.drop_index("ix_applied_stream_events_counted_at", table_name="applied_stream_events", schema="catalog")
    op.drop_column("applied_stream_events", "counted_at", schema="catalog")
    op.drop_index("ix_tracks_popularity", table_name="tracks", schema="catalog")
    op.drop_index("ix_albums_release_date", table_name="albums", schema="catalog")
    for column in ("available_markets", "upc", "copyrights", "genres", "images"):
        op.drop_column("albums", column, schema="catalog")
    op.drop_column("artists", "images", schema="catalog")
