"""catalog schema: initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:49:35.725461

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
    op.execute('CREATE SCHEMA IF NOT EXISTS "catalog"')
    # Search support: trigram similarity and accent folding. Extensions are database-wide and
    # installed into public (pg_trgm and unaccent are trusted extensions since PostgreSQL 13).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    # unaccent() is only STABLE (its dictionary could change); generated columns and index
    # expressions need IMMUTABLE, hence the usual wrapper with the dictionary named explicitly.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION catalog.immutable_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
        """
    )
    op.create_table(
        "applied_stream_events",
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_applied_stream_events")),
        schema="catalog",
    )
    op.create_index(
        "ix_applied_stream_events_applied_at",
        "applied_stream_events",
        ["applied_at"],
        unique=False,
        schema="catalog",
    )
    op.create_table(
        "artists",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "genres", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("follower_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("popularity", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("monthly_listeners", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('simple'::regconfig, catalog.immutable_unaccent(lower((name)::text)))",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("follower_count >= 0", name=op.f("ck_artists_follower_count_nonneg")),
        sa.CheckConstraint("monthly_listeners >= 0", name=op.f("ck_artists_monthly_listeners_nonneg")),
        sa.CheckConstraint("popularity BETWEEN 0 AND 100", name=op.f("ck_artists_popularity_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artists")),
        schema="catalog",
    )
    op.create_index(
        "ix_artists_genres", "artists", ["genres"], unique=False, schema="catalog", postgresql_using="gin"
    )
    op.create_index(
        "ix_artists_name_trgm",
        "artists",
        [sa.literal_column("catalog.immutable_unaccent(lower((name)::text)) gin_trgm_ops")],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_artists_popularity",
        "artists",
        [sa.literal_column("popularity DESC")],
        unique=False,
        schema="catalog",
    )
    op.create_index(
        "ix_artists_search_vector",
        "artists",
        ["search_vector"],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_table(
        "albums",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column(
            "release_date_precision", sa.String(length=5), server_default=sa.text("'day'"), nullable=False
        ),
        sa.Column("cover_url", sa.Text(), nullable=True),
        sa.Column("album_type", sa.String(length=20), server_default=sa.text("'album'"), nullable=False),
        sa.Column("total_tracks", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("popularity", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('simple'::regconfig, catalog.immutable_unaccent(lower((title)::text)))",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "album_type IN ('album', 'single', 'compilation', 'ep')", name=op.f("ck_albums_album_type")
        ),
        sa.CheckConstraint(
            "release_date_precision IN ('year', 'month', 'day')",
            name=op.f("ck_albums_release_date_precision"),
        ),
        sa.CheckConstraint("popularity BETWEEN 0 AND 100", name=op.f("ck_albums_popularity_range")),
        sa.CheckConstraint("total_tracks >= 0", name=op.f("ck_albums_total_tracks_nonneg")),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["catalog.artists.id"],
            name=op.f("fk_albums_artist_id_artists"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_albums")),
        schema="catalog",
    )
    op.create_index(
        "ix_albums_artist_id_release_date",
        "albums",
        ["artist_id", sa.literal_column("release_date DESC NULLS LAST")],
        unique=False,
        schema="catalog",
    )
    op.create_index(
        "ix_albums_search_vector",
        "albums",
        ["search_vector"],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_albums_title_trgm",
        "albums",
        [sa.literal_column("catalog.immutable_unaccent(lower((title)::text)) gin_trgm_ops")],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_table(
        "artist_listeners",
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "last_streamed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["catalog.artists.id"],
            name=op.f("fk_artist_listeners_artist_id_artists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("artist_id", "user_id", name=op.f("pk_artist_listeners")),
        schema="catalog",
    )
    op.create_index(
        "ix_artist_listeners_artist_id_last_streamed_at",
        "artist_listeners",
        ["artist_id", "last_streamed_at"],
        unique=False,
        schema="catalog",
    )
    op.create_index(
        "ix_artist_listeners_last_streamed_at",
        "artist_listeners",
        ["last_streamed_at"],
        unique=False,
        schema="catalog",
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("album_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("duration_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("track_number", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("disc_number", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("explicit", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.Column("preview_url", sa.Text(), nullable=True),
        sa.Column("stream_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("popularity", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("audio_features", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('simple'::regconfig, catalog.immutable_unaccent(lower((title)::text)))",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("disc_number >= 1", name=op.f("ck_tracks_disc_number_positive")),
        sa.CheckConstraint("duration_ms >= 0", name=op.f("ck_tracks_duration_ms_nonneg")),
        sa.CheckConstraint("popularity BETWEEN 0 AND 100", name=op.f("ck_tracks_popularity_range")),
        sa.CheckConstraint("stream_count >= 0", name=op.f("ck_tracks_stream_count_nonneg")),
        sa.CheckConstraint("track_number >= 1", name=op.f("ck_tracks_track_number_positive")),
        sa.ForeignKeyConstraint(
            ["album_id"], ["catalog.albums.id"], name=op.f("fk_tracks_album_id_albums"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        schema="catalog",
    )
    op.create_index(
        "ix_tracks_album_id_disc_track",
        "tracks",
        ["album_id", "disc_number", "track_number"],
        unique=False,
        schema="catalog",
    )
    op.create_index(
        "ix_tracks_search_vector",
        "tracks",
        ["search_vector"],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_tracks_stream_count",
        "tracks",
        [sa.literal_column("stream_count DESC")],
        unique=False,
        schema="catalog",
    )
    op.create_index(
        "ix_tracks_title_trgm",
        "tracks",
        [sa.literal_column("catalog.immutable_unaccent(lower((title)::text)) gin_trgm_ops")],
        unique=False,
        schema="catalog",
        postgresql_using="gin",
    )
    op.create_table(
        "audio_files",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("codec", sa.String(length=32), server_default=sa.text("'vorbis'"), nullable=False),
        sa.Column("container", sa.String(length=16), server_default=sa.text("'ogg'"), nullable=False),
        sa.Column("bitrate_kbps", sa.Integer(), nullable=False),
        sa.Column("sample_rate_hz", sa.Integer(), nullable=True),
        sa.Column("channels", sa.SmallInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("storage_path", sa.Text(), nullable=False),
        sa.Column("seek_index_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "quality IN ('low', 'normal', 'high', 'preview')", name=op.f("ck_audio_files_quality")
        ),
        sa.CheckConstraint("bitrate_kbps > 0", name=op.f("ck_audio_files_bitrate_kbps_positive")),
        sa.CheckConstraint("duration_ms >= 0", name=op.f("ck_audio_files_duration_ms_nonneg")),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_audio_files_size_bytes_nonneg")),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["catalog.tracks.id"],
            name=op.f("fk_audio_files_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_files")),
        sa.UniqueConstraint("track_id", "quality", name=op.f("uq_audio_files_track_id_quality")),
        schema="catalog",
    )
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'queued'"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source_filename", sa.Text(), nullable=True),
        sa.Column("source_size", sa.BigInteger(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_ingest_jobs_status")
        ),
        sa.CheckConstraint(
            "source_size IS NULL OR source_size >= 0", name=op.f("ck_ingest_jobs_source_size_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["catalog.tracks.id"],
            name=op.f("fk_ingest_jobs_track_id_tracks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_jobs")),
        schema="catalog",
    )
    op.create_index(
        "ix_ingest_jobs_status_created_at",
        "ingest_jobs",
        ["status", "created_at"],
        unique=False,
        schema="catalog",
    )
    op.create_index("ix_ingest_jobs_track_id", "ingest_jobs", ["track_id"], unique=False, schema="catalog")
    op.create_table(
        "track_artists",
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_track_artists_position_nonneg")),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["catalog.artists.id"],
            name=op.f("fk_track_artists_artist_id_artists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["catalog.tracks.id"],
            name=op.f("fk_track_artists_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "artist_id", name=op.f("pk_track_artists")),
        schema="catalog",
    )
    op.create_index(
        "ix_track_artists_artist_id", "track_artists", ["artist_id"], unique=False, schema="catalog"
    )


def downgrade() -> None:
    op.drop_index("ix_track_artists_artist_id", table_name="track_artists", schema="catalog")
    op.drop_table("track_artists", schema="catalog")
    op.drop_index("ix_ingest_jobs_track_id", table_name="ingest_jobs", schema="catalog")
    op.drop_index("ix_ingest_jobs_status_created_at", table_name="ingest_jobs", schema="catalog")
    op.drop_table("ingest_jobs", schema="catalog")
    op.drop_table("audio_files", schema="catalog")
    op.drop_index("ix_tracks_title_trgm", table_name="tracks", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_tracks_stream_count", table_name="tracks", schema="catalog")
    op.drop_index("ix_tracks_search_vector", table_name="tracks", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_tracks_album_id_disc_track", table_name="tracks", schema="catalog")
    op.drop_table("tracks", schema="catalog")
    op.drop_index("ix_artist_listeners_last_streamed_at", table_name="artist_listeners", schema="catalog")
    op.drop_index(
        "ix_artist_listeners_artist_id_last_streamed_at", table_name="artist_listeners", schema="catalog"
    )
    op.drop_table("artist_listeners", schema="catalog")
    op.drop_index("ix_albums_title_trgm", table_name="albums", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_albums_search_vector", table_name="albums", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_albums_artist_id_release_date", table_name="albums", schema="catalog")
    op.drop_table("albums", schema="catalog")
    op.drop_index("ix_artists_search_vector", table_name="artists", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_artists_popularity", table_name="artists", schema="catalog")
    op.drop_index("ix_artists_name_trgm", table_name="artists", schema="catalog", postgresql_using="gin")
    op.drop_index("ix_artists_genres", table_name="artists", schema="catalog", postgresql_using="gin")
    op.drop_table("artists", schema="catalog")
    op.drop_index("ix_applied_stream_events_applied_at", table_name="applied_stream_events", schema="catalog")
    op.drop_table("applied_stream_events", schema="catalog")
    op.execute("DROP FUNCTION IF EXISTS catalog.immutable_unaccent(text)")
    # pg_trgm/unaccent stay: other schemas may use them.
    # The schema stays: it holds this service's alembic_version table.
