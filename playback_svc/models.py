"""playback schema: counted streams (exactly-once), listening history, royalties, play state, offline.

Stream counting, exactly once: the consumer inserts into ``counted_streams`` with
``ON CONFLICT (idempotency_key) DO NOTHING RETURNING``; only when a row comes back does it
upsert ``track_stream_counts``, insert ``royalty_attributions`` and an ``outbox`` row for
``streams.counted.v1``, all in the same transaction; Kafka offsets are committed afterwards.
A relay publishes unpublished ``outbox`` rows (``published_at IS NULL``) and stamps them.

User, track and artist ids are plain UUIDs owned by other services (no foreign keys).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.orm import TYPE_ANNOTATION_MAP, schema_metadata
from meshkit.tombstones import ErasedUserColumns

SCHEMA = "playback"


PRODUCTS = ("free", "premium")
REPEAT_STATES = ("off", "track", "context")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class CountedStream(Base):
    __tablename__ = "counted_streams"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        CheckConstraint(_in("product", PRODUCTS), name="product"),
        CheckConstraint("position_ms >= 0", name="position_ms_nonneg"),
        Index("ix_counted_streams_track_id_counted_at", "track_id", "counted_at"),
        Index("ix_counted_streams_user_id_counted_at", "user_id", text("counted_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    idempotency_key: Mapped[str] = mapped_column(Text)
    user_id: Mapped[uuid.UUID] = mapped_column()
    track_id: Mapped[uuid.UUID] = mapped_column()
    counted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    product: Mapped[str] = mapped_column(String(16), server_default=text("'free'"))
    country: Mapped[str | None] = mapped_column(String(2))
    position_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class TrackStreamCount(Base):
    __tablename__ = "track_stream_counts"
    __table_args__ = (
        CheckConstraint("stream_count >= 0", name="stream_count_nonneg"),
        Index("ix_track_stream_counts_stream_count", text("stream_count DESC")),
    )

    track_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stream_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ListeningHistory(Base):
    """Every play (counted or not). ``event_id`` (the playback event's id) makes replays harmless:
    insert with ``ON CONFLICT (event_id) DO NOTHING``."""

    __tablename__ = "listening_history"
    __table_args__ = (
        UniqueConstraint("event_id"),
        CheckConstraint("ms_played >= 0", name="ms_played_nonneg"),
        Index("ix_listening_history_user_id_played_at", "user_id", text("played_at DESC")),
        Index("ix_listening_history_played_at", "played_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    event_id: Mapped[uuid.UUID | None] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    track_id: Mapped[uuid.UUID] = mapped_column()
    played_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ms_played: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    completed: Mapped[bool] = mapped_column(server_default=text("false"))
    skipped: Mapped[bool] = mapped_column(server_default=text("false"))
    device_type: Mapped[str | None] = mapped_column(String(32))
    context_uri: Mapped[str | None] = mapped_column(Text)
    stream_id: Mapped[uuid.UUID | None] = mapped_column()  # counted_streams.id once counted


class RoyaltyAttribution(Base):
    """One row per (counted stream, credited artist); weights of a stream sum to 1."""

    __tablename__ = "royalty_attributions"
    __table_args__ = (
        UniqueConstraint("stream_id", "artist_id"),
        CheckConstraint("weight > 0 AND weight <= 1", name="weight_range"),
        CheckConstraint(_in("product", PRODUCTS), name="product"),
        Index("ix_royalty_attributions_counted_at", "counted_at"),
        Index("ix_royalty_attributions_artist_id_counted_at", "artist_id", "counted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    stream_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.counted_streams.id", ondelete="CASCADE")
    )
    track_id: Mapped[uuid.UUID] = mapped_column()
    artist_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    product: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    counted_at: Mapped[datetime] = mapped_column()
    weight: Mapped[Decimal] = mapped_column(Numeric(9, 6), server_default=text("1"))


class PlayState(Base):
    """Current playback state per user (Spotify's ``/v1/me/player``). ``position_ms`` is the
    position at ``updated_at``; while ``is_playing`` the live position is
    ``position_ms + (now - updated_at)``."""

    __tablename__ = "play_states"
    __table_args__ = (
        CheckConstraint("position_ms >= 0", name="position_ms_nonneg"),
        CheckConstraint("volume_percent IS NULL OR volume_percent BETWEEN 0 AND 100", name="volume_percent"),
        CheckConstraint(_in("repeat_state", REPEAT_STATES), name="repeat_state"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    track_id: Mapped[uuid.UUID | None] = mapped_column()
    position_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    is_playing: Mapped[bool] = mapped_column(server_default=text("false"))
    device_id: Mapped[str | None] = mapped_column(String(128))
    device_name: Mapped[str | None] = mapped_column(String(100))
    device_type: Mapped[str | None] = mapped_column(String(32))
    volume_percent: Mapped[int | None] = mapped_column(SmallInteger)
    shuffle: Mapped[bool] = mapped_column(server_default=text("false"))
    repeat_state: Mapped[str] = mapped_column(String(8), server_default=text("'off'"))
    context_uri: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[list[uuid.UUID]] = mapped_column(server_default=text("'{}'::uuid[]"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class OfflineDevice(Base):
    """A device registered for offline downloads (at most 5 active per user, enforced in code)."""

    __tablename__ = "offline_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    user_id: Mapped[uuid.UUID] = mapped_column()
    device_key: Mapped[str] = mapped_column(Text)  # client-chosen stable device identifier
    name: Mapped[str | None] = mapped_column(String(100))
    device_type: Mapped[str | None] = mapped_column(String(32))
    # X25519 public key the device's content keys are wrapped for (raw 32 bytes).
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    registered_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class OfflineLicense(Base):
    """A 30-day license for one track on one device (at most 10,000 active per device, in code)."""

    __tablename__ = "offline_licenses"
    __table_args__ = (
        Index(
            "uq_offline_licenses_device_id_track_id_active",
            "device_id",
            "track_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
        CheckConstraint("expires_at > issued_at", name="expires_after_issued"),
        Index("ix_offline_licenses_user_id", "user_id"),
        Index("ix_offline_licenses_device_id", "device_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    user_id: Mapped[uuid.UUID] = mapped_column()
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.offline_devices.id", ondelete="CASCADE")
    )
    track_id: Mapped[uuid.UUID] = mapped_column()
    key_id: Mapped[str] = mapped_column(Text)  # identifies the per-track content key (AES-GCM)
    issued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column()
    renewed_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class OutboxEvent(Base):
    """Transactional outbox: events written in the same transaction as the state they describe."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column()


class ErasedUser(ErasedUserColumns, Base):
    """A deleted user's tombstone: late events of theirs write nothing here (meshkit.tombstones)."""
