"""SQL for the library schema; returns rows, knows nothing of protobuf or gRPC.

Every change to a playlist's items runs inside `LibraryStore.edit`, which locks the playlist row
(`SELECT ... FOR UPDATE`) for the whole transaction. Writers of one playlist therefore run one at
a time: positions are computed from a count nobody else can change meanwhile, so they stay dense
(0..n-1) however many collaborators add at once, and `snapshot_version` moves by exactly one per
change. Writers of different playlists never wait for each other.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.engine import ScalarResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from library_svc.models import Playlist, PlaylistCollaborator, PlaylistFollower, PlaylistItem, SavedItem
from meshkit import ids
from meshkit.db import SqlStore
from meshkit.errors import Aborted, NotFound
from meshkit.user_export import ExportFile
from meshkit.user_export import rows as export_rows

# Declarative classes map a Table; SQLAlchemy's stubs type `__table__` as the wider FromClause.
_items = cast(Table, PlaylistItem.__table__)
_playlists = cast(Table, Playlist.__table__)

# Closes the gap a delete leaves: everything from `lo` on is renumbered lo, lo+1, ... in order.
_COMPACT = text(
    """
    UPDATE library.playlist_items AS pi
       SET position = r.new_position
      FROM (SELECT track_id, CAST(:lo AS integer) + row_number() OVER (ORDER BY position) - 1 AS new_position
              FROM library.playlist_items
             WHERE playlist_id = :playlist_id AND position >= :lo) AS r
     WHERE pi.playlist_id = :playlist_id
       AND pi.track_id = r.track_id
       AND pi.position <> r.new_position
    """
)


def _with_collaborators() -> Select[Playlist, list[uuid.UUID] | None]:
    """The playlist row and its collaborators' ids (in the order they were added), in one query."""
    collaborators = (
        select(
            func.array_agg(aggregate_order_by(PlaylistCollaborator.user_id, PlaylistCollaborator.added_at))
        )
        .where(PlaylistCollaborator.playlist_id == Playlist.id)
        .scalar_subquery()
    )
    return select(Playlist, collaborators)


async def _count_followers(session: AsyncSession, playlist_id: uuid.UUID, delta: int) -> None:
    """Move the follower count with a follower row that appeared or went, under the UPDATE's row lock."""
    await session.execute(
        update(_playlists)
        .where(_playlists.c.id == playlist_id)
        .values(follower_count=_playlists.c.follower_count + delta)
    )


class _Keep:
    """Marks a detail that an update leaves as it is (None means "clear" for the description)."""


KEEP = _Keep()


@dataclass(frozen=True)
class PlaylistRow:
    """A playlist's row (the columns readers use)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    is_public: bool
    is_collaborative: bool
    follower_count: int
    item_count: int
    snapshot_version: int
    created_at: datetime

    @classmethod
    def of(cls, playlist: Playlist) -> PlaylistRow:
        """The row's fields from a loaded playlist (the field names are its columns)."""
        return cls(**{field.name: getattr(playlist, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class ItemRow:
    """One playlist item: which track, who added it and when."""

    track_id: uuid.UUID
    added_by: uuid.UUID | None
    added_at: datetime


@dataclass(frozen=True)
class SavedRow:
    """One saved item of a user's library."""

    item_id: uuid.UUID
    saved_at: datetime


@dataclass(frozen=True)
class PlaylistView:
    """A playlist as a reader sees it: the row, who may edit it, and one page of its items."""

    playlist: PlaylistRow
    collaborators: list[uuid.UUID]
    items: list[ItemRow]


@dataclass(frozen=True)
class Shift:
    """Add `delta` to every item position in [start, stop)."""

    start: int
    stop: int
    delta: int


class PlaylistEdit:
    """One locked playlist inside a transaction: the caller checks permissions, then changes it."""

    def __init__(self, session: AsyncSession, playlist: Playlist, collaborators: list[uuid.UUID]) -> None:
        self.session = session
        self._playlist = playlist
        self.collaborators = collaborators

    @property
    def playlist(self) -> PlaylistRow:
        """The row as it stands in this transaction (after the changes made so far)."""
        return PlaylistRow.of(self._playlist)

    @property
    def _id(self) -> uuid.UUID:
        return self._playlist.id

    async def present(self, track_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `track_ids` the playlist already holds."""
        if not track_ids:
            return set()
        found: ScalarResult[uuid.UUID] = await self.session.scalars(
            select(_items.c.track_id).where(
                _items.c.playlist_id == self._id, _items.c.track_id.in_(track_ids)
            )
        )
        return set(found)

    async def insert(self, track_ids: Sequence[uuid.UUID], position: int, added_by: uuid.UUID) -> None:
        """Insert new tracks at `position`, moving what was there down; keeps positions dense."""
        if not track_ids:
            return
        if position < self._playlist.item_count:  # inserting in front of existing items: make room
            await self.session.execute(
                update(_items)
                .where(_items.c.playlist_id == self._id, _items.c.position >= position)
                .values(position=_items.c.position + len(track_ids))
            )
        rows = [
            {"playlist_id": self._id, "track_id": t, "position": position + i, "added_by": added_by}
            for i, t in enumerate(track_ids)
        ]
        # The PK is the arbiter. Under the row lock no conflict can happen (the
        # caller filtered out present tracks); if one did, positions would have a gap, so give up.
        inserted = await self.session.scalars(
            insert(_items)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["playlist_id", "track_id"])
            .returning(_items.c.track_id)
        )
        if len(list(inserted)) != len(track_ids):
            raise Aborted("the playlist changed during the write; retry")
        self._changed(len(track_ids))

    async def remove(self, track_ids: Sequence[uuid.UUID]) -> int:
        """Remove the tracks that are present and close the gaps; returns how many were removed."""
        if not track_ids:
            return 0
        positions: list[int] = list(
            await self.session.scalars(
                delete(_items)
                .where(_items.c.playlist_id == self._id, _items.c.track_id.in_(track_ids))
                .returning(_items.c.position)
            )
        )
        if positions:
            await self.session.execute(_COMPACT, {"playlist_id": self._id, "lo": min(positions)})
            self._changed(-len(positions))
        return len(positions)

    async def move(self, shifts: Sequence[Shift]) -> None:
        """Apply a reorder plan (see reorder.plan_move) with one UPDATE."""
        if not shifts:
            return
        position = _items.c.position
        await self.session.execute(
            update(_items)
            .where(
                _items.c.playlist_id == self._id,
                position >= min(s.start for s in shifts),
                position < max(s.stop for s in shifts),
            )
            .values(
                position=case(
                    *[(and_(position >= s.start, position < s.stop), position + s.delta) for s in shifts],
                    else_=position,
                )
            )
        )
        self._changed(0)

    async def replace(self, track_ids: Sequence[uuid.UUID], added_by: uuid.UUID) -> None:
        """Make the playlist hold exactly `track_ids`, in that order."""
        await self.session.execute(delete(_items).where(_items.c.playlist_id == self._id))
        if track_ids:
            await self.session.execute(
                insert(_items).values(
                    [
                        {"playlist_id": self._id, "track_id": t, "position": i, "added_by": added_by}
                        for i, t in enumerate(track_ids)
                    ]
                )
            )
        self._playlist.item_count = 0
        self._changed(len(track_ids))

    def set_details(
        self,
        *,
        name: str | None = None,
        description: str | _Keep | None = KEEP,
        public: bool | None = None,
        collaborative: bool | None = None,
    ) -> None:
        """Change the given details (None / KEEP leave one as it is); a new version either way."""
        if name is not None:
            self._playlist.name = name
        if not isinstance(description, _Keep):
            self._playlist.description = description
        if public is not None:
            self._playlist.is_public = public
        if collaborative is not None:
            self._playlist.is_collaborative = collaborative
        self._changed(0)

    async def add_collaborator(self, user_id: uuid.UUID, added_by: uuid.UUID) -> None:
        await self.session.execute(
            insert(PlaylistCollaborator)
            .values(playlist_id=self._id, user_id=user_id, added_by=added_by)
            .on_conflict_do_nothing(index_elements=["playlist_id", "user_id"])
        )
        if user_id not in self.collaborators:
            self.collaborators.append(user_id)

    async def remove_collaborator(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(PlaylistCollaborator).where(
                PlaylistCollaborator.playlist_id == self._id, PlaylistCollaborator.user_id == user_id
            )
        )
        if user_id in self.collaborators:
            self.collaborators.remove(user_id)

    def _changed(self, item_delta: int) -> None:
        """A new version: one bump per change, whatever the change touched."""
        self._playlist.item_count += item_delta
        self._playlist.snapshot_version += 1


class LibraryStore(SqlStore):
    # ---- playlists -------------------------------------------------------------------------

    async def create_playlist(
        self, owner_id: uuid.UUID, name: str, description: str | None, public: bool, collaborative: bool
    ) -> PlaylistRow:
        async with self.sessions() as session, session.begin():
            playlist = Playlist(
                id=ids.new_id(),
                owner_id=owner_id,
                name=name,
                description=description,
                is_public=public,
                is_collaborative=collaborative,
                follower_count=0,
                item_count=0,
                snapshot_version=1,
            )
            session.add(playlist)
            await session.flush()
            await session.refresh(playlist, ["created_at"])
        return PlaylistRow.of(playlist)

    async def playlist(self, playlist_id: uuid.UUID) -> PlaylistView | None:
        """The playlist and its collaborators' user ids (no items), or None."""
        return await self.playlist_view(playlist_id, 0, 0)

    async def playlist_view(self, playlist_id: uuid.UUID, offset: int, limit: int) -> PlaylistView | None:
        """The playlist, its collaborators and items [offset, offset + limit): two queries.

        Positions are dense, so a page is a range of positions: an index range scan, however deep
        the page is (no OFFSET that reads and discards the items before it).
        """
        async with self.sessions() as session:
            found = (
                await session.execute(_with_collaborators().where(Playlist.id == playlist_id))
            ).one_or_none()
            if found is None:
                return None
            items: list[ItemRow] = []
            if limit > 0:
                rows = await session.execute(
                    select(PlaylistItem.track_id, PlaylistItem.added_by, PlaylistItem.added_at)
                    .where(
                        PlaylistItem.playlist_id == playlist_id,
                        PlaylistItem.position >= offset,
                        PlaylistItem.position < offset + limit,
                    )
                    .order_by(PlaylistItem.position)
                )
                items = [ItemRow(track_id, added_by, added_at) for track_id, added_by, added_at in rows]
            playlist, collaborators = found
            return PlaylistView(PlaylistRow.of(playlist), list(collaborators or []), items)

    @asynccontextmanager
    async def edit(self, playlist_id: uuid.UUID) -> AsyncIterator[PlaylistEdit]:
        """Lock the playlist for one transaction; commits when the block ends without an error."""
        async with self.sessions() as session, session.begin():
            found = (
                await session.execute(
                    _with_collaborators().where(Playlist.id == playlist_id).with_for_update(of=Playlist)
                )
            ).one_or_none()
            if found is None:
                raise NotFound("playlist not found")
            playlist, collaborators = found
            yield PlaylistEdit(session, playlist, list(collaborators or []))

    async def my_playlists(
        self, user_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[PlaylistRow], int]:
        """Playlists the user owns, follows or collaborates on and may still see; newest link first."""
        links = union_all(
            select(Playlist.id.label("playlist_id"), Playlist.created_at.label("at")).where(
                Playlist.owner_id == user_id
            ),
            select(PlaylistFollower.playlist_id, PlaylistFollower.followed_at).where(
                PlaylistFollower.user_id == user_id
            ),
            select(PlaylistCollaborator.playlist_id, PlaylistCollaborator.added_at).where(
                PlaylistCollaborator.user_id == user_id
            ),
        ).subquery()
        latest = (
            select(links.c.playlist_id, func.max(links.c.at).label("at"))
            .group_by(links.c.playlist_id)
            .subquery()
        )
        collaborating = select(PlaylistCollaborator.playlist_id).where(
            PlaylistCollaborator.user_id == user_id
        )
        visible = or_(Playlist.owner_id == user_id, Playlist.is_public, Playlist.id.in_(collaborating))
        rows = select(Playlist).join(latest, latest.c.playlist_id == Playlist.id).where(visible)
        page, total = await self._page(rows, (latest.c.at.desc(), Playlist.id), offset, limit)
        return [PlaylistRow.of(p) for p in page], total

    async def public_playlists(
        self, owner_id: uuid.UUID, offset: int, limit: int
    ) -> tuple[list[PlaylistRow], int]:
        """A user's public playlists, newest first."""
        rows = select(Playlist).where(Playlist.owner_id == owner_id, Playlist.is_public)
        page, total = await self._page(rows, (Playlist.created_at.desc(), Playlist.id), offset, limit)
        return [PlaylistRow.of(p) for p in page], total

    # ---- followers -------------------------------------------------------------------------

    async def follow(self, playlist_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Follow; True when it was new. The count moves only with a row that really appeared.

        Concurrent follows by one user serialize on the primary key (the second INSERT waits for
        the first to commit, then does nothing), and the count is `follower_count + 1` under the
        row lock the UPDATE takes: the count equals the number of follower rows.
        """
        async with self.sessions() as session, session.begin():
            added = await session.scalar(
                insert(PlaylistFollower)
                .values(playlist_id=playlist_id, user_id=user_id)
                .on_conflict_do_nothing(index_elements=["playlist_id", "user_id"])
                .returning(PlaylistFollower.user_id)
            )
            if added is None:
                return False
            await _count_followers(session, playlist_id, 1)
            return True

    async def unfollow(self, playlist_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Unfollow; True when the user was following."""
        async with self.sessions() as session, session.begin():
            removed = await session.scalar(
                delete(PlaylistFollower)
                .where(PlaylistFollower.playlist_id == playlist_id, PlaylistFollower.user_id == user_id)
                .returning(PlaylistFollower.user_id)
            )
            if removed is None:
                return False
            await _count_followers(session, playlist_id, -1)
            return True

    # ---- account deletion ------------------------------------------------------------------

    async def erase_user(self, user_id: uuid.UUID) -> None:
        """Everything the library holds about a deleted user, in one transaction (idempotent).

        Their playlists go, collaborative ones too: a playlist's name, description and cover are
        its owner's words, kept under no one. Their follows, collaborations and saved items go;
        the tracks they added to other people's playlists stay, no longer saying who added them.
        """
        async with self.sessions() as session, session.begin():
            await session.execute(delete(Playlist).where(Playlist.owner_id == user_id))
            followed = (
                await session.scalars(
                    delete(PlaylistFollower)
                    .where(PlaylistFollower.user_id == user_id)
                    .returning(PlaylistFollower.playlist_id)
                )
            ).all()
            for playlist_id in sorted(followed):  # one lock order for every eraser
                await _count_followers(session, playlist_id, -1)
            await session.execute(delete(PlaylistCollaborator).where(PlaylistCollaborator.user_id == user_id))
            await session.execute(
                update(PlaylistCollaborator)
                .where(PlaylistCollaborator.added_by == user_id)
                .values(added_by=None)
            )
            await session.execute(
                update(PlaylistItem).where(PlaylistItem.added_by == user_id).values(added_by=None)
            )
            await session.execute(delete(SavedItem).where(SavedItem.user_id == user_id))

    async def export_user(self, user_id: uuid.UUID) -> list[ExportFile]:
        """What the library holds about a user, as data export files (nothing about anyone else:
        a collaborator's additions to the user's playlists are marked as not theirs, unnamed)."""
        owned = select(Playlist.id).where(Playlist.owner_id == user_id)
        async with self.sessions() as session:
            playlists = await session.execute(
                select(
                    Playlist.id,
                    Playlist.name,
                    Playlist.description,
                    Playlist.is_public.label("public"),
                    Playlist.is_collaborative.label("collaborative"),
                    Playlist.follower_count,
                    Playlist.created_at,
                    Playlist.updated_at,
                )
                .where(Playlist.owner_id == user_id)
                .order_by(Playlist.created_at, Playlist.id)
            )
            items = await session.execute(
                select(
                    PlaylistItem.playlist_id,
                    PlaylistItem.position,
                    PlaylistItem.track_id,
                    PlaylistItem.added_at,
                    (PlaylistItem.added_by == user_id).is_(True).label("added_by_you"),
                )
                .where(PlaylistItem.playlist_id.in_(owned))
                .order_by(PlaylistItem.playlist_id, PlaylistItem.position)
            )
            collaborations = await session.execute(
                select(PlaylistCollaborator.playlist_id, Playlist.name, PlaylistCollaborator.added_at)
                .join(Playlist, Playlist.id == PlaylistCollaborator.playlist_id)
                .where(PlaylistCollaborator.user_id == user_id)
                .order_by(PlaylistCollaborator.added_at, PlaylistCollaborator.playlist_id)
            )
            added_elsewhere = await session.execute(
                select(
                    PlaylistItem.playlist_id,
                    PlaylistItem.position,
                    PlaylistItem.track_id,
                    PlaylistItem.added_at,
                )
                .where(PlaylistItem.added_by == user_id, PlaylistItem.playlist_id.not_in(owned))
                .order_by(PlaylistItem.playlist_id, PlaylistItem.position)
            )
            follows = await session.execute(
                select(PlaylistFollower.playlist_id, PlaylistFollower.followed_at)
                .where(PlaylistFollower.user_id == user_id)
                .order_by(PlaylistFollower.followed_at, PlaylistFollower.playlist_id)
            )
            saved = await session.execute(
                select(SavedItem.item_type, SavedItem.item_id, SavedItem.saved_at)
                .where(SavedItem.user_id == user_id)
                .order_by(SavedItem.saved_at, SavedItem.item_type, SavedItem.item_id)
            )
            return [
                ExportFile(
                    "library/playlists.json", "The playlists you own.", export_rows(playlists.mappings())
                ),
                ExportFile(
                    "library/playlist_items.json",
                    "The tracks of the playlists you own, in order; added_by_you is false for a "
                    "collaborator's addition (who added it is not yours to export).",
                    export_rows(items.mappings()),
                ),
                ExportFile(
                    "library/collaborations.json",
                    "Other people's playlists you were made a collaborator of.",
                    export_rows(collaborations.mappings()),
                ),
                ExportFile(
                    "library/added_to_other_playlists.json",
                    "Tracks you added to playlists you do not own.",
                    export_rows(added_elsewhere.mappings()),
                ),
                ExportFile(
                    "library/follows.json", "The playlists you follow.", export_rows(follows.mappings())
                ),
                ExportFile(
                    "library/saved_items.json",
                    "What you saved to your library: tracks, albums, artists.",
                    export_rows(saved.mappings()),
                ),
            ]

    async def following(self, user_id: uuid.UUID, playlist_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of the playlists the user follows."""
        if not playlist_ids:
            return set()
        async with self.sessions() as session:
            found = await session.scalars(
                select(PlaylistFollower.playlist_id).where(
                    PlaylistFollower.user_id == user_id, PlaylistFollower.playlist_id.in_(playlist_ids)
                )
            )
            return set(found)

    # ---- saved items -----------------------------------------------------------------------

    async def save(self, user_id: uuid.UUID, items: Sequence[tuple[str, uuid.UUID]]) -> None:
        """Save (type, id) pairs; saving again keeps the first saved_at."""
        if not items:
            return
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert(SavedItem)
                .values([{"user_id": user_id, "item_type": kind, "item_id": item} for kind, item in items])
                .on_conflict_do_nothing(index_elements=["user_id", "item_type", "item_id"])
            )

    async def unsave(self, user_id: uuid.UUID, items: Sequence[tuple[str, uuid.UUID]]) -> None:
        if not items:
            return
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(SavedItem).where(
                    SavedItem.user_id == user_id,
                    tuple_(SavedItem.item_type, SavedItem.item_id).in_(list(items)),
                )
            )

    async def saved(
        self, user_id: uuid.UUID, items: Sequence[tuple[str, uuid.UUID]]
    ) -> set[tuple[str, uuid.UUID]]:
        """Which of the (type, id) pairs the user has saved."""
        if not items:
            return set()
        async with self.sessions() as session:
            rows = await session.execute(
                select(SavedItem.item_type, SavedItem.item_id).where(
                    SavedItem.user_id == user_id,
                    tuple_(SavedItem.item_type, SavedItem.item_id).in_(list(items)),
                )
            )
            return {(kind, item) for kind, item in rows}

    async def saved_page(
        self, user_id: uuid.UUID, kind: str, offset: int, limit: int
    ) -> tuple[list[SavedRow], int]:
        """Saved items of one type, newest first."""
        rows = select(SavedItem).where(SavedItem.user_id == user_id, SavedItem.item_type == kind)
        page, total = await self._page(rows, (SavedItem.saved_at.desc(), SavedItem.item_id), offset, limit)
        return [SavedRow(s.item_id, s.saved_at) for s in page], total

    async def saved_after(
        self, user_id: uuid.UUID, kind: str, after: uuid.UUID | None, limit: int
    ) -> tuple[list[uuid.UUID], int]:
        """Saved ids of one type in id order after the cursor `after` (cursor paging), and the total."""
        condition = and_(SavedItem.user_id == user_id, SavedItem.item_type == kind)
        query = select(SavedItem.item_id).where(condition).order_by(SavedItem.item_id).limit(limit)
        if after is not None:
            query = query.where(SavedItem.item_id > after)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(SavedItem).where(condition))
            return list(await session.scalars(query)), total or 0

    async def _page(
        self,
        rows: Select[Any],
        order: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
        offset: int,
        limit: int,
    ) -> tuple[list[Any], int]:
        """One page of the entities `rows` selects, in `order`, and how many there are in all."""
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(rows.subquery()))
            page = await session.scalars(rows.order_by(*order).offset(offset).limit(limit))
            return list(page), total or 0
