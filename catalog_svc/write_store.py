"""SQL for catalog writes: one transaction per write, with its idempotency key and outbox event.

A write's transaction holds, together: the claim of its request id (write_requests), the rows
it changes, and the change event it publishes (outbox_events). Either all of it commits or
none of it does, so a retry can never see a half-done write and an event is never published
for a write that rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc import writes
from catalog_svc.models import Album, AlbumArtist, Artist, OutboxEvent, Track, TrackArtist, WriteRequest
from catalog_svc.store import AlbumRecord, TrackRecord, load_albums, load_tracks


class WriteStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteTx]:
        """A transaction that commits when the block ends normally and rolls back on an error."""
        async with self.sessions() as session, session.begin():
            yield WriteTx(session)


class WriteTx:
    """The statements of one write, all in one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- idempotency ------------------------------------------------------------------------

    async def claim(
        self, caller_id: uuid.UUID, rpc: str, request_id: str, fingerprint: str, entity_id: uuid.UUID
    ) -> tuple[str, uuid.UUID] | None:
        """Claim `request_id` for this write; None when claimed, else the first write's (fingerprint, id).

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
        return prior.fingerprint, prior.entity_id

    # ---- reads inside the write -------------------------------------------------------------

    async def artist_for_update(self, artist_id: uuid.UUID) -> Artist | None:
        return await self.session.get(Artist, artist_id, with_for_update=True)

    async def album_for_update(self, album_id: uuid.UUID) -> Album | None:
        return await self.session.get(Album, album_id, with_for_update=True)

    async def track_for_update(self, track_id: uuid.UUID) -> Track | None:
        return await self.session.get(Track, track_id, with_for_update=True)

    async def album_artist_ids(self, album: Album) -> list[uuid.UUID]:
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
        await self.session.flush()
        return (await load_tracks(self.session, [track_id]))[track_id]

    async def album_record(self, album_id: uuid.UUID, tracks_limit: int) -> AlbumRecord:
        await self.session.flush()
        return (await load_albums(self.session, [album_id], tracks_limit=tracks_limit))[album_id]

    async def artist(self, artist_id: uuid.UUID) -> Artist:
        await self.session.flush()
        artist = await self.session.get(Artist, artist_id, populate_existing=True)
        assert artist is not None
        return artist

    # ---- artists ------------------------------------------------------------------------------

    async def insert_artist(self, artist_id: uuid.UUID, draft: writes.ArtistDraft) -> None:
        self.session.add(
            Artist(
                id=artist_id,
                name=draft.name,
                genres=list(draft.genres),
                images=[i.as_json() for i in draft.images] or None,
                image_url=draft.images[0].url if draft.images else None,
            )
        )

    async def update_artist(self, artist: Artist, changes: writes.ArtistChanges) -> None:
        if changes.name is not None:
            artist.name = changes.name
        if changes.genres is not None:
            artist.genres = list(changes.genres)
        if changes.images is not None:
            artist.images = [i.as_json() for i in changes.images] or None
            artist.image_url = changes.images[0].url if changes.images else None
        artist.updated_at = func.now()

    # ---- albums -------------------------------------------------------------------------------

    async def insert_album(self, album_id: uuid.UUID, draft: writes.AlbumDraft) -> None:
        release = draft.release_date
        self.session.add(
            Album(
                id=album_id,
                artist_id=draft.artist_ids[0],
                title=draft.name,
                album_type=draft.album_type,
                release_date=release.value if release else None,
                release_date_precision=release.precision if release else "day",
                label=draft.label,
                genres=list(draft.genres),
                images=[i.as_json() for i in draft.images] or None,
                cover_url=draft.images[0].url if draft.images else None,
                copyrights=[c.as_json() for c in draft.copyrights] or None,
                upc=draft.upc,
                available_markets=list(draft.markets),
                total_tracks=0,
            )
        )
        await self.session.flush()
        await self._credit_album(album_id, draft.artist_ids)

    async def update_album(self, album: Album, changes: writes.AlbumChanges) -> None:
        if changes.name is not None:
            album.title = changes.name
        if changes.album_type is not None:
            album.album_type = changes.album_type
        if changes.release_date is not None:
            album.release_date = changes.release_date.value
            album.release_date_precision = changes.release_date.precision
        elif changes.clear_release_date:
            album.release_date = None
        if changes.label is not None or changes.clear_label:
            album.label = changes.label
        if changes.genres is not None:
            album.genres = list(changes.genres)
        if changes.images is not None:
            album.images = [i.as_json() for i in changes.images] or None
            album.cover_url = changes.images[0].url if changes.images else None
        if changes.copyrights is not None:
            album.copyrights = [c.as_json() for c in changes.copyrights] or None
        if changes.markets is not None:
            album.available_markets = list(changes.markets)
        if changes.artist_ids is not None:
            album.artist_id = changes.artist_ids[0]
            await self.session.execute(delete(AlbumArtist).where(AlbumArtist.album_id == album.id))
            await self._credit_album(album.id, changes.artist_ids)
        album.updated_at = func.now()

    async def _credit_album(self, album_id: uuid.UUID, artist_ids: Sequence[uuid.UUID]) -> None:
        await self.session.execute(
            insert(AlbumArtist),
            [{"album_id": album_id, "artist_id": a, "position": i} for i, a in enumerate(artist_ids)],
        )

    # ---- tracks -------------------------------------------------------------------------------

    async def insert_track(
        self, track_id: uuid.UUID, draft: writes.TrackDraft, artist_ids: Sequence[uuid.UUID]
    ) -> None:
        self.session.add(
            Track(
                id=track_id,
                album_id=draft.album_id,
                title=draft.name,
                track_number=draft.track_number,
                disc_number=draft.disc_number,
                explicit=draft.explicit,
                isrc=draft.isrc,
                duration_ms=0,  # set by audio ingest
            )
        )
        await self.session.flush()
        await self._credit_track(track_id, artist_ids)
        await self.session.execute(
            update(Album).where(Album.id == draft.album_id).values(total_tracks=Album.total_tracks + 1)
        )

    async def update_track(self, track: Track, changes: writes.TrackChanges) -> None:
        if changes.name is not None:
            track.title = changes.name
        if changes.track_number is not None:
            track.track_number = changes.track_number
        if changes.disc_number is not None:
            track.disc_number = changes.disc_number
        if changes.explicit is not None:
            track.explicit = changes.explicit
        if changes.isrc is not None or changes.clear_isrc:
            track.isrc = changes.isrc
        if changes.artist_ids is not None:
            await self.session.execute(delete(TrackArtist).where(TrackArtist.track_id == track.id))
            await self._credit_track(track.id, changes.artist_ids)
        track.updated_at = func.now()

    async def _credit_track(self, track_id: uuid.UUID, artist_ids: Sequence[uuid.UUID]) -> None:
        await self.session.execute(
            insert(TrackArtist),
            [{"track_id": track_id, "artist_id": a, "position": i} for i, a in enumerate(artist_ids)],
        )

    # ---- outbox -------------------------------------------------------------------------------

    async def add_event(self, topic: str, key: str, payload: bytes) -> None:
        self.session.add(OutboxEvent(topic=topic, key=key, payload=payload))
