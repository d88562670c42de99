"""rec schema: Discover Weekly playlists, hnswlib index versions, consumer idempotency.

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

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "rec"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INDEX_KINDS = ("tracks", "users")


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        list[uuid.UUID]: ARRAY(UUID(as_uuid=True)),
    }


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
