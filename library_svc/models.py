"""library schema: playlists (ordered, collaborative), followers, saved items.

User, track, album and artist ids are plain UUIDs owned by other services (no foreign keys).

Ordering: ``playlist_items.position`` is 0-based and dense per playlist. ``(playlist_id, position)``
is UNIQUE DEFERRABLE INITIALLY DEFERRED, so a reorder/insert/remove can shift a range of
positions with one ``UPDATE ... SET position = position + 1`` and is checked at commit. (A
deferrable constraint cannot be an ``ON CONFLICT`` arbiter; the primary key
``(playlist_id, track_id)`` is the one inserts use.)
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.orm import TYPE_ANNOTATION_MAP, schema_metadata

SCHEMA = "library"


SAVED_ITEM_TYPES = ("track", "album", "artist", "playlist")
PLAYLIST_NAME_MAX = 100
PLAYLIST_DESCRIPTION_MAX = 300


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Playlist(Base):
    __tablename__ = "playlists"
    __table_args__ = (
        CheckConstraint(f"char_length(name) BETWEEN 1 AND {PLAYLIST_NAME_MAX}", name="name_length"),
        CheckConstraint(
            f"description IS NULL OR char_length(description) <= {PLAYLIST_DESCRIPTION_MAX}",
            name="description_length",
        ),
        CheckConstraint("follower_count >= 0", name="follower_count_nonneg"),
        CheckConstraint("item_count >= 0", name="item_count_nonneg"),
        Index("ix_playlists_owner_id_created_at", "owner_id", text("created_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    owner_id: Mapped[uuid.UUID] = mapped_column()
    # Text + CHECK (not varchar(n)): an over-long value is an IntegrityError (CheckViolation) like
    # every other constraint, not a DataError; the service validates first anyway.
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_public: Mapped[bool] = mapped_column(server_default=text("true"))
    is_collaborative: Mapped[bool] = mapped_column(server_default=text("false"))
    follower_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    item_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # bumped on every change of items or details; the API's snapshot_id encodes (id, version)
    snapshot_version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    cover_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class PlaylistItem(Base):
    __tablename__ = "playlist_items"
    __table_args__ = (
        CheckConstraint("position >= 0", name="position_nonneg"),
        UniqueConstraint("playlist_id", "position", deferrable=True, initially="DEFERRED"),
        Index("ix_playlist_items_track_id", "track_id"),
    )

    playlist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.playlists.id", ondelete="CASCADE"), primary_key=True
    )
    track_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    added_by: Mapped[uuid.UUID | None] = mapped_column()
    added_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PlaylistCollaborator(Base):
    __tablename__ = "playlist_collaborators"
    __table_args__ = (Index("ix_playlist_collaborators_user_id", "user_id"),)

    playlist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.playlists.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    added_by: Mapped[uuid.UUID | None] = mapped_column()
    added_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PlaylistFollower(Base):
    __tablename__ = "playlist_followers"
    __table_args__ = (
        Index("ix_playlist_followers_user_id_followed_at", "user_id", text("followed_at DESC")),
    )

    playlist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.playlists.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    followed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SavedItem(Base):
    """The user's library (``/v1/me/library``): saved tracks, albums, followed artists and playlists."""

    __tablename__ = "saved_items"
    __table_args__ = (
        CheckConstraint(
            "item_type IN (" + ", ".join(repr(t) for t in SAVED_ITEM_TYPES) + ")",
            name="item_type",
        ),
        Index("ix_saved_items_user_id_item_type_saved_at", "user_id", "item_type", text("saved_at DESC")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    item_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    saved_at: Mapped[datetime] = mapped_column(server_default=func.now())
