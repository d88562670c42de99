"""rec schema: Discover Weekly playlists, hnswlib index versions, consumer idempotency, and
rec's own copies of what it learns from: counted streams (from `streams.counted.v1`), skips
(from `playback.events.v1`) and the catalog facts a model needs (from catalog_svc's API and
`catalog.changes.v1`).

rec never reads another service's schema; these copies are what it may keep instead.

Embeddings and the hnswlib indexes themselves are files (see ``index_versions.path``); the
batch job inserts a version row, then swaps it active in one transaction::

    UPDATE rec.index_versions SET active = false WHERE kind = :kind AND active;
    UPDATE rec.index_versions SET active = true WHERE id = :id;

(at most one active version per kind: a partial unique index, checked per statement, so the
deactivation must come first).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.orm import TYPE_ANNOTATION_MAP, schema_metadata
from meshkit.tombstones import ErasedUserColumns

SCHEMA = "rec"


INDEX_KINDS = ("tracks", "users")


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class DiscoverWeekly(Base):
    __tablename__ = "discover_weekly"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    model_version: Mapped[str] = mapped_column(Text)
    track_ids: Mapped[list[uuid.UUID]] = mapped_column(server_default=text("'{}'::uuid[]"))


class IndexVersion(Base):
    __tablename__ = "index_versions"
    __table_args__ = (
        CheckConstraint("kind IN (" + ", ".join(repr(k) for k in INDEX_KINDS) + ")", name="kind"),
        CheckConstraint("dim > 0", name="dim_positive"),
        CheckConstraint("count >= 0", name="count_nonneg"),
        UniqueConstraint("kind", "version"),
        Index("uq_index_versions_kind_active", "kind", unique=True, postgresql_where=text("active")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    space: Mapped[str] = mapped_column(String(16), server_default=text("'cosine'"))
    built_at: Mapped[datetime] = mapped_column(server_default=func.now())
    active: Mapped[bool] = mapped_column(server_default=text("false"))


class EventApplied(Base):
    """Ids of Kafka events the rec consumer has applied (insert in the same transaction as the effect)."""

    __tablename__ = "events_applied"
    __table_args__ = (Index("ix_events_applied_applied_at", "applied_at"),)

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic: Mapped[str | None] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Listen(Base):
    """A counted stream as rec keeps it: the input of user embeddings and the factorisation.

    The primary key is the stream id, so a redelivered `streams.counted.v1` event inserts
    nothing the second time (the consumer's effect is exactly-once).
    """

    __tablename__ = "listens"
    __table_args__ = (
        Index("ix_listens_user_id_counted_at", "user_id", "counted_at"),
        Index("ix_listens_counted_at", "counted_at"),
    )

    stream_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[uuid.UUID]
    track_id: Mapped[uuid.UUID]
    artist_ids: Mapped[list[uuid.UUID]] = mapped_column(server_default=text("'{}'::uuid[]"))
    counted_at: Mapped[datetime]
    played_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Completion weight: 1.0 for a counted (completed) stream (skips live in rec.skips).
    weight: Mapped[float] = mapped_column(REAL, server_default=text("1"))


class Skip(Base):
    """A skip as rec keeps it: negative feedback for user embeddings and the factorisation.

    One row per playback session: the primary key is the user and the session's idempotency
    key (unique per user), so a redelivered `playback.events.v1` record, or a client's retry
    of the same skip, inserts nothing the second time.
    """

    __tablename__ = "skips"
    __table_args__ = (
        CheckConstraint("weight < 0", name="weight_negative"),
        CheckConstraint("position_ms >= 0", name="position_ms_nonneg"),
        Index("ix_skips_user_id_skipped_at", "user_id", "skipped_at"),
        Index("ix_skips_skipped_at", "skipped_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    track_id: Mapped[uuid.UUID]
    # The server's receive time of the skip event (the same on every replay).
    skipped_at: Mapped[datetime]
    # Where in the track the user skipped, and the track's length as the client reported it.
    position_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    track_duration_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Completion weight as the model reads it: negative, so the skip counts against the track.
    weight: Mapped[float] = mapped_column(REAL, server_default=text("-1"))


class TrackInfo(Base):
    """rec's copy of the catalog facts a model uses; catalog_svc stays the source of truth."""

    __tablename__ = "tracks"
    # Each replica reads the rows changed since its last look (rec_svc.reloading).
    __table_args__ = (Index("ix_tracks_updated_at", "updated_at"),)

    track_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    artist_ids: Mapped[list[uuid.UUID]] = mapped_column(server_default=text("'{}'::uuid[]"))
    genres: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    features: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    popularity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    deleted: Mapped[bool] = mapped_column(server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ErasedUser(ErasedUserColumns, Base):
    """A deleted user's tombstone: late events of theirs write nothing here (meshkit.tombstones)."""
