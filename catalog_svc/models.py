"""catalog schema: artists, albums, tracks, audio files, ingest jobs, stream-count bookkeeping,
write idempotency keys and the change-event outbox.

Search: ``search_vector`` (generated, stored) on artists/albums/tracks is
``to_tsvector('simple', catalog.immutable_unaccent(lower(name|title)))`` with a GIN index, and
``catalog.immutable_unaccent(lower(name|title))`` also has a GIN trigram index (pg_trgm) for
fuzzy / prefix matching. Query with the same expression, e.g.::

    WHERE t.search_vector @@ to_tsquery('simple', catalog.immutable_unaccent(lower(:q)) || ':*')
       OR catalog.immutable_unaccent(lower(t.title)) % catalog.immutable_unaccent(lower(:q))

(``immutable_unaccent`` and the extensions are created by migration 0001, not by ``create_all``.)
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.orm import TYPE_ANNOTATION_MAP, schema_metadata
from meshkit.tombstones import ErasedUserColumns

SCHEMA = "catalog"


ALBUM_TYPES = ("album", "single", "compilation", "ep")
# Spotify's album groups (how an album relates to an artist) in the order "Get Artist's Albums"
# lists them.
ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")
RELEASE_DATE_PRECISIONS = ("year", "month", "day")
AUDIO_QUALITIES = ("low", "normal", "high", "preview")
INGEST_STATUSES = ("queued", "running", "succeeded", "failed")
ENTITY_TYPES = ("track", "album", "artist")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _search_vector(column: str) -> Computed:
    return Computed(
        f"to_tsvector('simple'::regconfig, {SCHEMA}.immutable_unaccent(lower(({column})::text)))",
        persisted=True,
    )


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=func.gen_random_uuid())


def _created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


def _owned_by(table: str) -> Mapped[uuid.UUID]:
    """A primary-key column referring to `table`, whose rows take this one with them when deleted."""
    return mapped_column(ForeignKey(f"{SCHEMA}.{table}.id", ondelete="CASCADE"), primary_key=True)


class Artist(Base):
    __tablename__ = "artists"
    __table_args__ = (
        CheckConstraint("popularity BETWEEN 0 AND 100", name="popularity_range"),
        CheckConstraint("follower_count >= 0", name="follower_count_nonneg"),
        CheckConstraint("monthly_listeners >= 0", name="monthly_listeners_nonneg"),
        Index("ix_artists_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_artists_genres", "genres", postgresql_using="gin"),
        Index("ix_artists_popularity", text("popularity DESC")),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(500))
    bio: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    # Spotify image list [{"url", "height", "width"}] (0002); image_url keeps the first url.
    images: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    verified: Mapped[bool] = mapped_column(server_default=text("false"))
    genres: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    follower_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    popularity: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    monthly_listeners: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, _search_vector("name"), deferred=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Album(Base):
    __tablename__ = "albums"
    __table_args__ = (
        CheckConstraint(_in("album_type", ALBUM_TYPES), name="album_type"),
        CheckConstraint(
            _in("release_date_precision", RELEASE_DATE_PRECISIONS), name="release_date_precision"
        ),
        CheckConstraint("total_tracks >= 0", name="total_tracks_nonneg"),
        CheckConstraint("popularity BETWEEN 0 AND 100", name="popularity_range"),
        Index("ix_albums_artist_id_release_date", "artist_id", text("release_date DESC NULLS LAST")),
        Index("ix_albums_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_albums_release_date", "release_date"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    artist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.artists.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(500))
    release_date: Mapped[date | None] = mapped_column(Date)
    release_date_precision: Mapped[str] = mapped_column(String(5), server_default=text("'day'"))
    cover_url: Mapped[str | None] = mapped_column(Text)
    album_type: Mapped[str] = mapped_column(String(20), server_default=text("'album'"))
    total_tracks: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    label: Mapped[str | None] = mapped_column(Text)
    popularity: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    # 0002: the rest of Spotify's album object. cover_url keeps the first image's url.
    images: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    genres: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    copyrights: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # [{"text", "type"}]
    upc: Mapped[str | None] = mapped_column(String(14))
    available_markets: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))  # empty: all
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, _search_vector("title"), deferred=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class AlbumArtist(Base):
    """Credited artists of an album, in credit order (0002).

    Same convention as track_artists: the main artist (``albums.artist_id``) at position 0.
    Albums written before 0002 have no rows here; readers fall back to ``albums.artist_id``.
    """

    __tablename__ = "album_artists"
    __table_args__ = (
        CheckConstraint("position >= 0", name="position_nonneg"),
        Index("ix_album_artists_artist_id", "artist_id"),
    )

    album_id: Mapped[uuid.UUID] = _owned_by("albums")
    artist_id: Mapped[uuid.UUID] = _owned_by("artists")
    position: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (
        CheckConstraint("duration_ms >= 0", name="duration_ms_nonneg"),
        CheckConstraint("track_number >= 1", name="track_number_positive"),
        CheckConstraint("disc_number >= 1", name="disc_number_positive"),
        CheckConstraint("stream_count >= 0", name="stream_count_nonneg"),
        CheckConstraint("popularity BETWEEN 0 AND 100", name="popularity_range"),
        Index("ix_tracks_album_id_disc_track", "album_id", "disc_number", "track_number"),
        Index("ix_tracks_stream_count", text("stream_count DESC")),
        Index("ix_tracks_popularity", text("popularity DESC")),
        Index("ix_tracks_search_vector", "search_vector", postgresql_using="gin"),
        # Search reads the popular band first (search_store.POPULAR must match the predicate).
        Index(
            "ix_tracks_search_vector_popular",
            "search_vector",
            postgresql_using="gin",
            postgresql_where=text("popularity >= 70"),
        ),
        Index("ix_tracks_filter_genres", "filter_genres", postgresql_using="gin"),
        Index("ix_tracks_filter_artists", "filter_artists", postgresql_using="gin"),
        Index("ix_tracks_filter_release_date", "filter_release_date"),
        # Covering: search reads an album's or a credited track's popularity without the heap.
        Index("ix_tracks_album_id_popularity", "album_id", postgresql_include=["popularity", "id"]),
        Index("ix_tracks_id_popularity", "id", postgresql_include=["popularity"]),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    album_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.albums.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    track_number: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    disc_number: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    explicit: Mapped[bool] = mapped_column(server_default=text("false"))
    isrc: Mapped[str | None] = mapped_column(String(12))
    preview_url: Mapped[str | None] = mapped_column(Text)
    stream_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    popularity: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    # danceability, energy, tempo, loudness, key, mode, ... extracted at ingest (see ingest_jobs)
    audio_features: Mapped[dict[str, Any] | None] = mapped_column()
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, _search_vector("title"), deferred=True)
    # Copies of what search filters test, kept by triggers (migration 0004): never written here.
    filter_genres: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"), deferred=True)
    filter_artists: Mapped[str] = mapped_column(TSVECTOR, server_default=text("''::tsvector"), deferred=True)
    filter_release_date: Mapped[date | None] = mapped_column(deferred=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class TrackArtist(Base):
    """Credited artists of a track, in credit order.

    Convention: every credited artist is a row, the main artist at position 0 and featured
    artists after it, so "tracks by artist X" (top tracks, appears-on) is one index lookup.
    """

    __tablename__ = "track_artists"
    __table_args__ = (
        CheckConstraint("position >= 0", name="position_nonneg"),
        Index("ix_track_artists_artist_id_track_id", "artist_id", "track_id"),
    )

    track_id: Mapped[uuid.UUID] = _owned_by("tracks")
    artist_id: Mapped[uuid.UUID] = _owned_by("artists")
    position: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))


class AudioFile(Base):
    """One encoded rendition of a track (Ogg Vorbis at 96/160/320 kbps, plus a preview clip)."""

    __tablename__ = "audio_files"
    __table_args__ = (
        CheckConstraint(_in("quality", AUDIO_QUALITIES), name="quality"),
        CheckConstraint("bitrate_kbps > 0", name="bitrate_kbps_positive"),
        CheckConstraint("size_bytes >= 0", name="size_bytes_nonneg"),
        CheckConstraint("duration_ms >= 0", name="duration_ms_nonneg"),
        UniqueConstraint("track_id", "quality"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.tracks.id", ondelete="CASCADE"))
    quality: Mapped[str] = mapped_column(String(16))
    codec: Mapped[str] = mapped_column(String(32), server_default=text("'vorbis'"))
    container: Mapped[str] = mapped_column(String(16), server_default=text("'ogg'"))
    bitrate_kbps: Mapped[int] = mapped_column(Integer)
    sample_rate_hz: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(SmallInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int] = mapped_column(Integer)
    storage_path: Mapped[str] = mapped_column(Text)  # relative to the object storage root
    seek_index_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", INGEST_STATUSES), name="status"),
        CheckConstraint("source_size IS NULL OR source_size >= 0", name="source_size_nonneg"),
        Index("ix_ingest_jobs_track_id", "track_id"),
        Index("ix_ingest_jobs_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    track_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(f"{SCHEMA}.tracks.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'queued'"))
    error: Mapped[str | None] = mapped_column(Text)
    source_filename: Mapped[str | None] = mapped_column(Text)
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    source_path: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[uuid.UUID | None] = mapped_column()  # auth user id (no FK: other service)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = _created_at()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class AppliedStreamEvent(Base):
    """streams.counted.v1 events already applied to tracks.stream_count (insert first, in the same
    transaction as the increment: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` gates it)."""

    __tablename__ = "applied_stream_events"
    __table_args__ = (
        Index("ix_applied_stream_events_applied_at", "applied_at"),
        Index("ix_applied_stream_events_counted_at", "counted_at"),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    track_id: Mapped[uuid.UUID] = mapped_column()
    applied_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # 0002: when playback counted the stream (event time), for the popularity window.
    counted_at: Mapped[datetime | None] = mapped_column()


class ArtistListener(Base):
    """Latest stream per (artist, user); monthly listeners = rows streamed in the last 28 days."""

    __tablename__ = "artist_listeners"
    __table_args__ = (
        Index("ix_artist_listeners_artist_id_last_streamed_at", "artist_id", "last_streamed_at"),
        Index("ix_artist_listeners_last_streamed_at", "last_streamed_at"),
    )

    artist_id: Mapped[uuid.UUID] = _owned_by("artists")
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    last_streamed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WriteRequest(Base):
    """A write's idempotency key (0002): (caller, rpc, request_id) -> the entity it created or changed.

    Inserted in the write's own transaction, so a retry either finds the committed first result
    or (while the first attempt is still open) waits on the primary key and then finds it.
    ``fingerprint`` (sha256 of the request) tells a retry from a different request reusing a key.
    Rows older than 24 h are purged by ``python -m catalog_svc.jobs purge-write-requests``.
    """

    __tablename__ = "write_requests"
    __table_args__ = (Index("ix_write_requests_created_at", "created_at"),)

    caller_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    rpc: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = _created_at()


class OutboxEvent(Base):
    """A catalog.changes.v1 event not yet acknowledged by Kafka (0002).

    Written in the same transaction as the change it describes and deleted once published,
    so an event is never lost to a broker outage (at-least-once; consumers dedupe by event_id).
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()


class Takedown(Base):
    """A withdrawn track, album or artist (0008). Reads leave out whatever it covers: the entity,
    and for an album its tracks, for an artist the albums it leads and their tracks. Catalog rows
    stay as they are, so a restore is the row's deletion and nothing else."""

    __tablename__ = "takedowns"
    __table_args__ = (CheckConstraint(_in("entity_type", ENTITY_TYPES), name="entity_type"),)

    entity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # ids are unique across kinds
    entity_type: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    taken_down_by: Mapped[uuid.UUID] = mapped_column()  # auth user id (no FK: other service)
    # An admin's takedown (a legal one, say) is lifted or changed by an admin only.
    by_admin: Mapped[bool] = mapped_column()
    taken_down_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SearchWord(Base):
    """Every folded word of every name (kept by triggers, migration 0005): search corrects a
    misspelt word to the closest of these."""

    __tablename__ = "search_words"
    __table_args__ = (
        Index(
            "ix_search_words_word_trgm",
            "word",
            postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"},
        ),
    )

    word: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)


def _trigram_index(name: str, column: Any) -> Index:
    """GIN trigram index on immutable_unaccent(lower(column)); defined with real expressions (not
    text) and the operator class in postgresql_ops so alembic autogenerate can compare it."""
    key = f"{column.key}_folded"
    expr = getattr(func, SCHEMA).immutable_unaccent(func.lower(column)).label(key)
    return Index(name, expr, postgresql_using="gin", postgresql_ops={key: "gin_trgm_ops"})


_trigram_index("ix_artists_name_trgm", Artist.name)
_trigram_index("ix_albums_title_trgm", Album.title)
_trigram_index("ix_tracks_title_trgm", Track.title)


def _exact_name_index(name: str, table: Any) -> Index:
    """Names equal to a search query, most popular first (search ranks exact names first)."""
    return Index(name, func.strip(table.search_vector), table.popularity.desc(), table.id)


_exact_name_index("ix_artists_exact_name", Artist)
_exact_name_index("ix_albums_exact_name", Album)
_exact_name_index("ix_tracks_exact_name", Track)


class ErasedUser(ErasedUserColumns, Base):
    """A deleted user's tombstone: late events of theirs write nothing here (meshkit.tombstones)."""
