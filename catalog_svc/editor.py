"""Catalog writes: permission, idempotency, the change itself and its event, in that order.

The servicer hands over validated drafts (catalog_svc.writes). For each write the editor
1. resolves the caller's permissions (auth_svc, before any transaction is open),
2. in one transaction: claims the request id (a retry returns the first result and changes
   nothing), locks and checks the target and its parents (NOT_FOUND, PERMISSION_DENIED,
   ALREADY_EXISTS), applies the change and stores the change event in the outbox,
3. after the commit, wakes the outbox relay, which publishes the event to Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from spotify.catalog.v1 import catalog_pb2

from catalog_svc import events, writes
from catalog_svc.models import Artist
from catalog_svc.objects import ALBUM_TRACKS_LIMIT, ObjectBuilder
from catalog_svc.permissions import Editor, Permissions
from catalog_svc.store import AlbumRecord, TrackRecord
from catalog_svc.write_store import WriteStore, WriteTx
from meshkit import ids
from meshkit.errors import AlreadyExists, InvalidArgument, NotFound

T = TypeVar("T")


@dataclass(frozen=True)
class WriteRequest:
    """What identifies a write for retries: its request id and a fingerprint of its content."""

    rpc: str
    request_id: str
    fingerprint: str


class CatalogEditor:
    def __init__(
        self,
        store: WriteStore,
        permissions: Permissions,
        objects: ObjectBuilder,
        outbox: events.OutboxRelay | None,
    ) -> None:
        self.store = store
        self.permissions = permissions
        self.objects = objects
        self.outbox = outbox

    async def _write(
        self,
        request: WriteRequest,
        entity_id: uuid.UUID,
        change: Callable[[WriteTx, Editor], Awaitable[T]],
        replay: Callable[[WriteTx, uuid.UUID], Awaitable[T]],
    ) -> T:
        """Run `change` once per request id; a retry gets `replay` of the entity the first one wrote.

        The replay answers with the entity as it is now (the first result's id, today's state),
        and changes nothing: no row, no event.
        """
        editor = await self.permissions.editor()
        async with self.store.transaction() as tx:
            if request.request_id:
                prior = await tx.claim(
                    editor.user_id, request.rpc, request.request_id, request.fingerprint, entity_id
                )
                if prior is not None:
                    fingerprint, prior_id = prior
                    if fingerprint != request.fingerprint:
                        raise InvalidArgument("request_id was already used for a different request")
                    return await replay(tx, prior_id)
            result = await change(tx, editor)
        if self.outbox is not None:
            self.outbox.kick()
        return result

    # ---- artists --------------------------------------------------------------------------------

    async def create_artist(self, request: WriteRequest, draft: writes.ArtistDraft) -> Artist:
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> Artist:
            editor.require_admin("creating an artist")
            await tx.insert_artist(new_id, draft)
            artist = await tx.artist(new_id)
            await self._publish(tx, events.CREATED, editor, artist=self.objects.artist(artist))
            return artist

        return await self._write(request, new_id, change, lambda tx, prior: tx.artist(prior))

    async def update_artist(
        self, request: WriteRequest, artist_id: uuid.UUID, changes: writes.ArtistChanges
    ) -> Artist:
        async def change(tx: WriteTx, editor: Editor) -> Artist:
            artist = await tx.artist_for_update(artist_id)
            if artist is None:
                raise NotFound(f"artist {ids.encode(artist_id)} not found")
            editor.require_manages([artist_id], "artist")
            await tx.update_artist(artist, changes)
            artist = await tx.artist(artist_id)
            await self._publish(tx, events.UPDATED, editor, artist=self.objects.artist(artist))
            return artist

        return await self._write(request, artist_id, change, lambda tx, prior: tx.artist(prior))

    # ---- albums ---------------------------------------------------------------------------------

    async def create_album(self, request: WriteRequest, draft: writes.AlbumDraft) -> AlbumRecord:
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> AlbumRecord:
            await _require_artists(tx, draft.artist_ids)
            editor.require_manages(draft.artist_ids, "album")
            await tx.insert_album(new_id, draft)
            return await self._album_changed(tx, new_id, events.CREATED, editor)

        return await self._write(request, new_id, change, _album_replay)

    async def update_album(
        self, request: WriteRequest, album_id: uuid.UUID, changes: writes.AlbumChanges
    ) -> AlbumRecord:
        async def change(tx: WriteTx, editor: Editor) -> AlbumRecord:
            album = await tx.album_for_update(album_id)
            if album is None:
                raise NotFound(f"album {ids.encode(album_id)} not found")
            editor.require_manages([album.artist_id], "album")
            if changes.artist_ids is not None:
                await _require_artists(tx, changes.artist_ids)
                editor.require_manages(changes.artist_ids, "album")
            await tx.update_album(album, changes)
            return await self._album_changed(tx, album_id, events.UPDATED, editor)

        return await self._write(request, album_id, change, _album_replay)

    async def _album_changed(
        self, tx: WriteTx, album_id: uuid.UUID, kind: int, editor: Editor
    ) -> AlbumRecord:
        record = await tx.album_record(album_id, ALBUM_TRACKS_LIMIT)
        await self._publish(tx, kind, editor, album=self.objects.album(record))
        return record

    # ---- tracks ---------------------------------------------------------------------------------

    async def create_track(self, request: WriteRequest, draft: writes.TrackDraft) -> TrackRecord:
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> TrackRecord:
            album = await tx.album_for_update(draft.album_id)  # also serialises track numbering
            if album is None:
                raise NotFound(f"album {ids.encode(draft.album_id)} not found")
            editor.require_manages([album.artist_id], "album")
            artist_ids = draft.artist_ids or tuple(await tx.album_artist_ids(album))
            await _require_artists(tx, artist_ids)
            if await tx.position_taken(album.id, draft.disc_number, draft.track_number):
                raise AlreadyExists(
                    f"album {ids.encode(album.id)} already has track {draft.track_number} "
                    f"on disc {draft.disc_number}"
                )
            await tx.insert_track(new_id, draft, artist_ids)
            return await self._track_changed(tx, new_id, events.CREATED, editor)

        return await self._write(request, new_id, change, lambda tx, prior: tx.track_record(prior))

    async def update_track(
        self, request: WriteRequest, track_id: uuid.UUID, changes: writes.TrackChanges
    ) -> TrackRecord:
        async def change(tx: WriteTx, editor: Editor) -> TrackRecord:
            track = await tx.track_for_update(track_id)
            if track is None:
                raise NotFound(f"track {ids.encode(track_id)} not found")
            album = await tx.album_for_update(track.album_id)
            assert album is not None  # foreign key
            editor.require_manages([album.artist_id], "track")
            if changes.artist_ids is not None:
                await _require_artists(tx, changes.artist_ids)
            disc = changes.disc_number or track.disc_number
            number = changes.track_number or track.track_number
            if (disc, number) != (track.disc_number, track.track_number) and await tx.position_taken(
                album.id, disc, number, except_track=track.id
            ):
                raise AlreadyExists(f"album {ids.encode(album.id)} already has track {number} on disc {disc}")
            await tx.update_track(track, changes)
            return await self._track_changed(tx, track_id, events.UPDATED, editor)

        return await self._write(request, track_id, change, lambda tx, prior: tx.track_record(prior))

    async def _track_changed(
        self, tx: WriteTx, track_id: uuid.UUID, kind: int, editor: Editor
    ) -> TrackRecord:
        record = await tx.track_record(track_id)
        await self._publish(tx, kind, editor, track=self.objects.track(record))
        return record

    # ---- helpers --------------------------------------------------------------------------------

    async def _publish(
        self,
        tx: WriteTx,
        kind: int,
        editor: Editor,
        *,
        track: catalog_pb2.Track | None = None,
        album: catalog_pb2.Album | None = None,
        artist: catalog_pb2.Artist | None = None,
    ) -> None:
        event = events.change_event(kind, editor.user_id, track=track, album=album, artist=artist)
        await tx.add_event(events.TOPIC, event.id, event.SerializeToString())


async def _album_replay(tx: WriteTx, album_id: uuid.UUID) -> AlbumRecord:
    return await tx.album_record(album_id, ALBUM_TRACKS_LIMIT)


async def _require_artists(tx: WriteTx, artist_ids: tuple[uuid.UUID, ...] | list[uuid.UUID]) -> None:
    """NOT_FOUND naming the first artist id that does not exist."""
    missing = await tx.missing_artists(list(artist_ids))
    if missing:
        raise NotFound(f"artist {ids.encode(missing[0])} not found")
