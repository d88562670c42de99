"""Catalog writes: permission, idempotency, the change itself and its event, in that order.

The servicer hands over how to read each request into validated drafts (catalog_svc.rules). For
each write this module
1. checks the caller may write at all (from the request's metadata: UNAUTHENTICATED or
   PERMISSION_DENIED before anything about the request is judged), then reads the draft
   (INVALID_ARGUMENT) and resolves the caller's permissions (auth_svc, before any transaction),
2. in one transaction: claims the request id (a retry returns the first result and changes
   nothing), locks and checks the target and its parents (NOT_FOUND, PERMISSION_DENIED,
   ALREADY_EXISTS), applies the change and stores the change event in the outbox,
3. after the commit, wakes the outbox relay, which publishes the event to Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from catalog_svc import rules
from catalog_svc.changes import CREATED, UPDATED, Change, ChangeEvents
from catalog_svc.permissions import Editor, Permissions, check_writer
from catalog_svc.store import AlbumRecord, ArtistRow, TrackRecord
from catalog_svc.write_store import WriteStore, WriteTx
from meshkit import ids, topics
from meshkit.errors import AlreadyExists, InvalidArgument, NotFound
from meshkit.idempotency import fingerprint

D = TypeVar("D")
# What a change event carries: the changed entity as its object shows it.
E = TypeVar("E", ArtistRow, AlbumRecord, TrackRecord)


@dataclass(frozen=True)
class WriteRequest:
    """What identifies a write for retries: the RPC, the request id and the request's content.

    `content` is the request as the client sent it (its deterministic serialization): a retry
    must send the same, or its request id is refused as used for a different request.
    """

    rpc: str
    request_id: str
    content: bytes


@dataclass(frozen=True)
class Writes:
    store: WriteStore
    permissions: Permissions
    events: ChangeEvents
    wake_outbox: Callable[[], None] | None = None

    # ---- artists --------------------------------------------------------------------------------

    async def create_artist(self, request: WriteRequest, read: Callable[[], rules.ArtistDraft]) -> ArtistRow:
        draft = _judged(read)
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> None:
            editor.require_admin("creating an artist")
            await tx.insert_artist(new_id, draft)

        return await self._write(request, CREATED, new_id, change, WriteTx.artist)

    async def update_artist(
        self, request: WriteRequest, read: Callable[[], rules.ArtistChanges]
    ) -> ArtistRow:
        changes = _judged(read)

        async def change(tx: WriteTx, editor: Editor) -> None:
            _found(await tx.lock_artist(changes.id), "artist", changes.id)
            editor.require_manages([changes.id], "artist")
            await tx.update_artist(changes)

        return await self._write(request, UPDATED, changes.id, change, WriteTx.artist)

    # ---- albums ---------------------------------------------------------------------------------

    async def create_album(self, request: WriteRequest, read: Callable[[], rules.AlbumDraft]) -> AlbumRecord:
        draft = _judged(read)
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> None:
            await _require_artists(tx, draft.artist_ids)
            editor.require_manages(draft.artist_ids, "album")
            await tx.insert_album(new_id, draft)

        return await self._write(request, CREATED, new_id, change, _album_record)

    async def update_album(
        self, request: WriteRequest, read: Callable[[], rules.AlbumChanges]
    ) -> AlbumRecord:
        changes = _judged(read)

        async def change(tx: WriteTx, editor: Editor) -> None:
            album = _found(await tx.lock_album(changes.id), "album", changes.id)
            editor.require_manages([album.artist_id], "album")
            if changes.artist_ids is not None:
                await _require_artists(tx, changes.artist_ids)
                editor.require_manages(changes.artist_ids, "album")
            await tx.update_album(changes)

        return await self._write(request, UPDATED, changes.id, change, _album_record)

    # ---- tracks ---------------------------------------------------------------------------------

    async def create_track(self, request: WriteRequest, read: Callable[[], rules.TrackDraft]) -> TrackRecord:
        draft = _judged(read)
        new_id = ids.new_id()

        async def change(tx: WriteTx, editor: Editor) -> None:
            # The album's lock also serialises the album's track numbering.
            album = _found(await tx.lock_album(draft.album_id), "album", draft.album_id)
            editor.require_manages([album.artist_id], "album")
            artist_ids = draft.artist_ids or tuple(await tx.album_artist_ids(album))
            await _require_artists(tx, artist_ids)
            await _require_free_position(tx, album.id, draft.disc_number, draft.track_number)
            await tx.insert_track(new_id, draft, artist_ids)

        return await self._write(request, CREATED, new_id, change, WriteTx.track_record)

    async def update_track(
        self, request: WriteRequest, read: Callable[[], rules.TrackChanges]
    ) -> TrackRecord:
        changes = _judged(read)

        async def change(tx: WriteTx, editor: Editor) -> None:
            track = _found(await tx.lock_track(changes.id), "track", changes.id)
            album = _found(await tx.lock_album(track.album_id), "album", track.album_id)  # a foreign key
            editor.require_manages([album.artist_id], "track")
            if changes.artist_ids is not None:
                await _require_artists(tx, changes.artist_ids)
            disc = changes.disc_number or track.disc_number
            number = changes.track_number or track.track_number
            if (disc, number) != (track.disc_number, track.track_number):
                await _require_free_position(tx, album.id, disc, number, except_track=track.id)
            await tx.update_track(changes)

        return await self._write(request, UPDATED, changes.id, change, WriteTx.track_record)

    # ---- every write ----------------------------------------------------------------------------

    async def _write(
        self,
        request: WriteRequest,
        kind: str,
        entity_id: uuid.UUID,
        change: Callable[[WriteTx, Editor], Awaitable[None]],
        load: Callable[[WriteTx, uuid.UUID], Awaitable[E]],
    ) -> E:
        """Run `change` once per request id, store its event, and answer with the entity it wrote.

        A retry answers with the entity the first one wrote as it is now (the first result's id,
        today's state), and changes nothing: no row, no event.
        """
        key = rules.request_id(request.request_id)
        editor = await self.permissions.editor()
        async with self.store.transaction() as tx:
            if key:
                content = fingerprint(request.content)
                prior = await tx.claim(editor.user_id, request.rpc, key, content, entity_id)
                if prior is not None:
                    if prior.fingerprint != content:
                        raise InvalidArgument("request_id was already used for a different request")
                    return await load(tx, prior.entity_id)
            await change(tx, editor)
            entity = await load(tx, entity_id)
            await self._publish(tx, Change(kind, editor.user_id, entity))
        if self.wake_outbox is not None:
            self.wake_outbox()
        return entity

    async def _publish(self, tx: WriteTx, change: Change) -> None:
        """Store the change's event in the outbox, keyed by the entity's id (one entity's events
        stay in order)."""
        event = self.events.change_event(change)
        await tx.add_event(topics.CATALOG_CHANGES.name, ids.encode(change.entity_id), event)


def _judged(read: Callable[[], D]) -> D:
    """The request read into validated values, once the caller is known to be allowed to write:
    a caller who may not write hears so (401/403) before anything about their request (400)."""
    check_writer()
    return read()


def _found(row: D | None, kind: str, key: uuid.UUID) -> D:
    if row is None:
        raise NotFound(f"{kind} {ids.encode(key)} not found")
    return row


async def _album_record(tx: WriteTx, album_id: uuid.UUID) -> AlbumRecord:
    return await tx.album_record(album_id, rules.ALBUM_TRACKS_LIMIT)


async def _require_artists(tx: WriteTx, artist_ids: Sequence[uuid.UUID]) -> None:
    """NOT_FOUND naming the first artist id that does not exist."""
    missing = await tx.missing_artists(list(artist_ids))
    if missing:
        raise NotFound(f"artist {ids.encode(missing[0])} not found")


async def _require_free_position(
    tx: WriteTx, album_id: uuid.UUID, disc: int, number: int, *, except_track: uuid.UUID | None = None
) -> None:
    if await tx.position_taken(album_id, disc, number, except_track=except_track):
        raise AlreadyExists(f"album {ids.encode(album_id)} already has track {number} on disc {disc}")
