"""auth schema: users, roles, artist management grants, audit log, account deletions and the
outbox that announces them.

Sessions live in Redis, not here. ``users.email`` is stored normalised (stripped, lower-cased)
and is unique on ``lower(email)``; look users up with ``WHERE lower(email) = lower(:email)``.
Premium is a role (``user_roles.role = 'premium'``), not a column.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.orm import TYPE_ANNOTATION_MAP, schema_metadata

SCHEMA = "auth"


ROLES = ("user", "premium", "artist", "admin")
EXPORT_STATES = ("pending", "done", "failed")


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("char_length(email) BETWEEN 3 AND 320", name="email_length"),
        CheckConstraint("country IS NULL OR country ~ '^[A-Z]{2}$'", name="country_iso2"),
        CheckConstraint("NOT banned OR banned_at IS NOT NULL", name="banned_at_set"),
        Index("ix_users_created_at", text("created_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(Text)  # bcrypt
    display_name: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2, upper case
    banned: Mapped[bool] = mapped_column(server_default=text("false"))
    banned_at: Mapped[datetime | None] = mapped_column()
    ban_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column()


# Outside the class so the expression is built from the column (alembic can then compare it).
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(repr(r) for r in ROLES) + ")", name="role"),
        Index("ix_user_roles_role", "role"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    granted_by: Mapped[uuid.UUID | None] = mapped_column()


class UserArtist(Base):
    """Which catalog artists (catalog.artists.id, no FK: other service) a user with role artist manages."""

    __tablename__ = "user_artists"
    __table_args__ = (Index("ix_user_artists_artist_id", "artist_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"), primary_key=True
    )
    artist_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    granted_by: Mapped[uuid.UUID | None] = mapped_column()


class AuditLog(Base):
    """Append-only record of sensitive actions, written by auth_svc for every service.

    ``actor_id`` deliberately has no FK so entries outlive the user; ``resource_id`` is text
    because resources are not all UUIDs (emails on failed logins, URIs).
    Actions: ``user.login``, ``user.logout``, ``user.register``, ``user.ban``, ``user.unban``,
    ``role.grant``, ``role.revoke``, ``subscription.downgrade``, ``playlist.collaborator.add``, ...
    """

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_occurred_at", text("occurred_at DESC")),
        Index("ix_audit_logs_actor_id", "actor_id"),
        Index("ix_audit_logs_action", "action"),
        Index("ix_audit_logs_resource", "resource_type", "resource_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_ip: Mapped[str | None] = mapped_column(INET)
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column()
    success: Mapped[bool] = mapped_column(server_default=text("true"))
    request_id: Mapped[str | None] = mapped_column(String(128))


class UserDeletion(Base):
    """A deleted account (0002): the user id and who asked, nothing else about the user.

    The account's row is gone when this is written; the row stays so an admin can see the
    erasure's progress and a repeated deletion answers the same.
    """

    __tablename__ = "user_deletions"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # None: the user themselves; else the admin who deleted the account.
    requested_by: Mapped[uuid.UUID | None] = mapped_column()


class DeletionConfirmation(Base):
    """A service's confirmation that it erased a deleted user's data (0002)."""

    __tablename__ = "deletion_confirmations"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.user_deletions.user_id", ondelete="CASCADE"), primary_key=True
    )
    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    confirmed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxEvent(Base):
    """A users.deleted.v1 event not yet acknowledged by Kafka (0002), written with the deletion and
    deleted once published (meshkit.outbox)."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DataExport(Base):
    """A user's data export (0003): asked for once per request id, assembled by the export worker,
    the archive kept here until it expires (a purge job drops old ones)."""

    __tablename__ = "data_exports"
    __table_args__ = (
        UniqueConstraint("user_id", "request_id"),
        CheckConstraint("state IN ('pending', 'done', 'failed')", name="state"),
        Index("ix_data_exports_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    user_id: Mapped[uuid.UUID] = mapped_column()
    request_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # When the worker may (re)try it; a claimed export is pushed out by the claim's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    error: Mapped[str | None] = mapped_column(Text)
    archive: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
