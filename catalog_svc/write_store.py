"""SQL for catalog writes: one transaction per write, with its idempotency key and outbox event.

A write's transaction holds, together: the claim of its request id (write_requests), the rows
it changes, and the change event it publishes (outbox_events). Either all of it commits or
none of it does, so a retry can never see a half-done write and an event is never published
for a write that rolled back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from catalog_svc import rules
from catalog_svc.models import (
    Album,
    AlbumArtist,
    Artist,
    OutboxEvent,
    Takedown,
    Track,
    TrackArtist,
    WriteRequest,
)
from catalog_svc.store import (
    AlbumRecord,
    ArtistRow,
    TrackRecord,
    load_albums,
    load_artists,
    load_tracks,
    row_columns,
    select_row,
)
from meshkit.db import SqlStore


@dataclass(frozen=True, slots=True)
class AlbumOwner:
    """A locked album and its main artist (whose manager may change it)."""

    id: uuid.UUID
    artist_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class TrackSlot:
    """A locked track, its album and its place on it."""

    id: uuid.UUID
    album_id: uuid.UUID
    disc_number: int
    track_number: int


@dataclass(frozen=True, slots=True)
class TakedownRow:
    """A takedown as stored (field names are column names, in select order)."""

    entity_id: uuid.UUID
    entity_type: str
    reason: str
    taken_down_by: uuid.UUID
    by_admin: bool
    taken_down_at: dt.datetime | None = None  # set by the database


@dataclass(frozen=True)
class Covered:
    """The entities a takedown of one entity covers, by id, as reads load them."""

    tracks: dict[uuid.UUID, TrackRecord]
    albums: dict[uuid.UUID, AlbumRecord]
    # Artists with whether they are withdrawn (artist rows carry no such mark).
    artists: dict[uuid.UUID, tuple[ArtistRow, bool]]

    def live(self) -> dict[uuid.UUID, TrackRecord | AlbumRecord | ArtistRow]:
        """Those reads show, by id."""
        found: dict[uuid.UUID, TrackRecord | AlbumRecord | ArtistRow] = {}
        found.update((key, r) for key, r in self.tracks.items() if not r.withdrawn)
        found.update((key, r) for key, r in self.albums.items() if not r.withdrawn)
        found.update((key, row) for key, (row, withdrawn) in self.artists.items() if not withdrawn)
        return found


@dataclass(frozen=True, slots=True)
class PriorWrite:
    """The first write under a request id: what it was (fingerprint) and the entity it wrote."""

    fingerprint: str
    entity_id: uuid.UUID


class WriteStore(SqlStore):
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteTx]:
        """A transaction that commits when the block ends normally and rolls back on an error."""
        async with self.sessions() as session, session.begin():
            yield WriteTx(session)

    async def takedowns(
        self, entity_type: str | None, offset: int, limit: int
    ) -> tuple[list[TakedownRow], int]:
        """A page of takedowns (of one entity type, or all), newest first, and how many match."""
        where = [Takedown.entity_type == entity_type] if entity_type else []
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Takedown).where(*where))
            found = await session.execute(
                select_row(TakedownRow, Takedown.__table__)
                .where(*where)
                .order_by(Takedown.taken_down_at.desc(), Takedown.entity_id)
                .offset(offset)
                .limit(limit)
            )
            return [TakedownRow(*row) for row in found], int(total or 0)


class WriteTx:
    """The statements of one write, all in one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- idempotency ------------------------------------------------------------------------

    async def claim(
        self, caller_id: uuid.UUID, rpc: str, request_id: str, fingerprint: str, entity_id: uuid.UUID
    ) -> PriorWrite | None:
        """Claim `request_id` for this write; None when claimed, else the first write under it.

        A concurrent first attempt still in flight holds the key's row lock: this waits for it
        to commit (then sees its result) or roll back (then claims the key itself).
        """
        claimed = await self.session.scalar(
            pg_insert(WriteRequest)
            .values(
                caller_id=caller_id,
                rpc=rpc,
                request_id=request_id,
                fingerprint=fingerprint,
                entity_id=entity_id,
            )
            .on_conflict_do_nothing()
            .returning(WriteRequest.entity_id)
        )
        if claimed is not None:
            return None
        prior = (
            await self.session.execute(
                select(WriteRequest.fingerprint, WriteRequest.entity_id).where(
                    WriteRequest.caller_id == caller_id,
                    WriteRequest.rpc == rpc,
                    WriteRequest.request_id == request_id,
                )
            )
        ).one()
        return PriorWrite(prior.fingerprint, prior.entity_id)

    # ---- reads inside the write -------------------------------------------------------------

    async def lock_artist(self, artist_id: uuid.UUID) -> uuid.UUID | None:
        """Lock the artist's row; None when there is no such artist."""
        return await self.session.scalar(select(Artist.id).where(Artist.id == artist_id).with_for_update())

    async def lock_album(self, album_id: uuid.UUID) -> AlbumOwner | None:
        row = (
            await self.session.execute(
                select(Album.id, Album.artist_id).where(Album.id == album_id).with_for_update()
            )
        ).one_or_none()
        return AlbumOwner(*row) if row is not None else None

    async def lock_track(self, track_id: uuid.UUID) -> TrackSlot | None:
        row = (
            await self.session.execute(
                select(Track.id, Track.album_id, Track.disc_number, Track.track_number)
                .where(Track.id == track_id)
                .with_for_update()
            )
        ).one_or_none()
        return TrackSlot(*row) if row is not None else None

    async def album_artist_ids(self, album: AlbumOwner) -> list[uuid.UUID]:
        """Credited artists of an album in order (the main artist alone for albums without rows)."""
        credited = list(
            await self.session.scalars(
                select(AlbumArtist.artist_id)
                .where(AlbumArtist.album_id == album.id)
                .order_by(AlbumArtist.position)
            )
        )
        return credited or [album.artist_id]

    async def missing_artists(self, artist_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Those of `artist_ids` that do not exist, in the given order."""
        if not artist_ids:
            return []
        found = set(await self.session.scalars(select(Artist.id).where(Artist.id.in_(artist_ids))))
        return [a for a in artist_ids if a not in found]

    async def position_taken(
        self, album_id: uuid.UUID, disc: int, number: int, except_track: uuid.UUID | None = None
    ) -> bool:
        query = select(Track.id).where(
            Track.album_id == album_id, Track.disc_number == disc, Track.track_number == number
        )
        if except_track is not None:
            query = query.where(Track.id != except_track)
        return (await self.session.scalar(query.limit(1))) is not None

    async def track_record(self, track_id: uuid.UUID) -> TrackRecord:
        return (await load_tracks(self.session, [track_id]))[track_id]

    async def album_record(self, album_id: uuid.UUID, tracks_limit: int) -> AlbumRecord:
        return (await load_albums(self.session, [album_id], tracks_limit=tracks_limit))[album_id]

    async def artist(self, artist_id: uuid.UUID) -> ArtistRow:
        return (await load_artists(self.session, [artist_id]))[artist_id]

    # ---- artists ------------------------------------------------------------------------------

    async def insert_artist(self, artist_id: uuid.UUID, draft: rules.ArtistDraft) -> None:
        values = _columns(draft, _ARTIST_COLUMNS)
        await self.session.execute(insert(Artist).values(id=artist_id, **values, **_images(draft.images)))

    async def update_artist(self, changes: rules.ArtistChanges) -> None:
        values = _columns(changes, _ARTIST_COLUMNS)
        if changes.images is not None:
            values.update(_images(changes.images))
        await self.session.execute(
            update(Artist).where(Artist.id == changes.id).values(**values, updated_at=func.now())
        )

    # ---- albums -------------------------------------------------------------------------------

    async def insert_album(self, album_id: uuid.UUID, draft: rules.AlbumDraft) -> None:
        await self.session.execute(
            insert(Album).values(
                id=album_id,
                artist_id=draft.artist_ids[0],
                upc=draft.upc,
                total_tracks=0,
                copyrights=_copyrights(draft.copyrights),
                **_columns(draft, _ALBUM_COLUMNS),
                **_release_date(draft.release_date),
                **_images(draft.images, url_column="cover_url"),
            )
        )
        await self._credit(AlbumArtist.album_id, album_id, draft.artist_ids)

    async def update_album(self, changes: rules.AlbumChanges) -> None:
        values = _columns(changes, _ALBUM_COLUMNS)
        if changes.release_date is not None:
            values.update(_release_date(changes.release_date))
        elif changes.clear_release_date:
            values["release_date"] = None
        if changes.clear_label:
            values["label"] = None
        if changes.images is not None:
            values.update(_images(changes.images, url_column="cover_url"))
        if changes.copyrights is not None:
            values["copyrights"] = _copyrights(changes.copyrights)
        if changes.artist_ids is not None:
            values["artist_id"] = changes.artist_ids[0]
        await self.session.execute(
            update(Album).where(Album.id == changes.id).values(**values, updated_at=func.now())
        )
        if changes.artist_ids is not None:
            await self._credit(AlbumArtist.album_id, changes.id, changes.artist_ids, replace=True)

    # ---- tracks -------------------------------------------------------------------------------

    async def insert_track(
        self, track_id: uuid.UUID, draft: rules.TrackDraft, artist_ids: Sequence[uuid.UUID]
    ) -> None:
        values = _columns(draft, _TRACK_COLUMNS)
        # duration_ms is set by audio ingest.
        await self.session.execute(
            insert(Track).values(id=track_id, album_id=draft.album_id, duration_ms=0, **values)
        )
        await self._credit(TrackArtist.track_id, track_id, artist_ids)
        await self.session.execute(
            update(Album).where(Album.id == draft.album_id).values(total_tracks=Album.total_tracks + 1)
        )

    async def update_track(self, changes: rules.TrackChanges) -> None:
        values = _columns(changes, _TRACK_COLUMNS)
        if changes.clear_isrc:
            values["isrc"] = None
        await self.session.execute(
            update(Track).where(Track.id == changes.id).values(**values, updated_at=func.now())
        )
        if changes.artist_ids is not None:
            await self._credit(TrackArtist.track_id, changes.id, changes.artist_ids, replace=True)

    async def _credit(
        self,
        owner: InstrumentedAttribute[uuid.UUID],
        owner_id: uuid.UUID,
        artist_ids: Sequence[uuid.UUID],
        *,
        replace: bool = False,
    ) -> None:
        """Credit `artist_ids`, in order, on the album or track `owner_id` (`owner` is the credit
        table's column naming it), instead of its present credits if `replace`."""
        credits = owner.class_
        if replace:
            await self.session.execute(delete(credits).where(owner == owner_id))
        await self.session.execute(
            insert(credits),
            [{owner.key: owner_id, "artist_id": a, "position": i} for i, a in enumerate(artist_ids)],
        )

    # ---- takedowns ----------------------------------------------------------------------------

    async def takedown(self, entity_id: uuid.UUID) -> TakedownRow | None:
        row = (
            await self.session.execute(
                select_row(TakedownRow, Takedown.__table__).where(Takedown.entity_id == entity_id)
            )
        ).one_or_none()
        return TakedownRow(*row) if row is not None else None

    async def put_takedown(self, row: TakedownRow) -> TakedownRow:
        """Store the takedown, or change the reason of the one there (who and when stay the first's;
        an admin's makes it an admin's)."""
        changed: dict[str, Any] = {"reason": row.reason}
        if row.by_admin:
            changed["by_admin"] = True
        stored = (
            await self.session.execute(
                pg_insert(Takedown)
                .values(
                    entity_id=row.entity_id,
                    entity_type=row.entity_type,
                    reason=row.reason,
                    taken_down_by=row.taken_down_by,
                    by_admin=row.by_admin,
                )
                .on_conflict_do_update(index_elements=[Takedown.entity_id], set_=changed)
                .returning(*row_columns(TakedownRow, Takedown.__table__))
            )
        ).one()
        return TakedownRow(**stored._mapping)

    async def delete_takedown(self, entity_id: uuid.UUID) -> None:
        await self.session.execute(delete(Takedown).where(Takedown.entity_id == entity_id))

    async def covered(self, entity_type: str, entity_id: uuid.UUID) -> Covered:
        """The entity and what its takedown would cover, each as its reads load it now (withdrawn
        ones marked): an album's tracks; an artist's albums it leads and their tracks."""
        if entity_type == "track":
            track_ids, album_ids = [entity_id], []
        elif entity_type == "album":
            album_ids = [entity_id]
            track_ids = list(await self.session.scalars(select(Track.id).where(Track.album_id == entity_id)))
        else:
            album_ids = list(await self.session.scalars(select(Album.id).where(Album.artist_id == entity_id)))
            track_ids = (
                list(await self.session.scalars(select(Track.id).where(Track.album_id.in_(album_ids))))
                if album_ids
                else []
            )
        artists = await load_artists(self.session, [entity_id]) if entity_type == "artist" else {}
        withdrawn_artists = set(
            await self.session.scalars(
                select(Takedown.entity_id).where(Takedown.entity_id.in_(list(artists)))
            )
        )
        return Covered(
            tracks=await load_tracks(self.session, track_ids),
            albums=await load_albums(self.session, album_ids, tracks_limit=rules.ALBUM_TRACKS_LIMIT),
            artists={key: (row, key in withdrawn_artists) for key, row in artists.items()},
        )

    # ---- outbox -------------------------------------------------------------------------------

    async def add_event(self, topic: str, key: str, payload: bytes) -> None:
        await self.session.execute(insert(OutboxEvent).values(topic=topic, key=key, payload=payload))


# The fields of drafts and changes that are stored as they are, by the column that stores them.
_ARTIST_COLUMNS = {"name": "name", "genres": "genres"}
_ALBUM_COLUMNS = {
    "name": "title",
    "album_type": "album_type",
    "label": "label",
    "genres": "genres",
    "markets": "available_markets",
}
_TRACK_COLUMNS = {
    "name": "title",
    "track_number": "track_number",
    "disc_number": "disc_number",
    "explicit": "explicit",
    "isrc": "isrc",
}


def _columns(values: object, columns: Mapping[str, str]) -> dict[str, Any]:
    """The fields of a draft or change named in `columns`, under their column names (tuples as
    lists); a field that is None is left out (an update leaves the column as it is)."""
    found = {column: getattr(values, field) for field, column in columns.items()}
    return {
        column: list(value) if isinstance(value, tuple) else value
        for column, value in found.items()
        if value is not None
    }


def _release_date(release: rules.ReleaseDate | None) -> dict[str, Any]:
    if release is None:
        return {"release_date": None, "release_date_precision": "day"}
    return {"release_date": release.value, "release_date_precision": release.precision}


def _copyrights(copyrights: Sequence[rules.Copyright]) -> list[dict[str, Any]] | None:
    return [asdict(c) for c in copyrights] or None


def _images(images: Sequence[rules.Image], url_column: str = "image_url") -> dict[str, Any]:
    """The stored image list and the first image's url, which older readers use on its own."""
    return {"images": [asdict(i) for i in images] or None, url_column: images[0].url if images else None}


def purge_write_requests(engine: Engine, *, hours: int = 24) -> int:
    """Forget idempotency keys older than `hours` (the batch job's statement, on a sync engine)."""
    with engine.begin() as conn:
        return conn.execute(
            text("DELETE FROM catalog.write_requests WHERE created_at < now() - make_interval(hours => :h)"),
            {"h": hours},
        ).rowcount
