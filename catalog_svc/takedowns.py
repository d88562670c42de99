"""Takedowns: content withdrawn from the catalog with a reason, and restored, by those who may.

Who: an admin, any track, album or artist; an artist, the tracks and albums of artists they manage
(not an artist as a whole). An admin's takedown (a legal one, say) is changed or lifted by an
admin only, so an artist cannot undo it.

What it does: a row in catalog.takedowns. Reads leave out whatever it covers (catalog_svc.store):
a track, an album with its tracks, an artist with the albums they lead and those albums' tracks.
In the same transaction it stores one catalog.changes.v1 event per entity that leaves the reads
(DELETED) or comes back (CREATED, with its snapshot), so consumers follow without knowing what a
takedown is: rec drops a deleted track from its live index and its stored mixes. An entity that
another takedown still covers produces no event on a restore. After the commit, the tracks whose
answers changed are announced (meshkit.evictions), so library and playback drop what they cache
about them at once instead of serving it until their TTLs run out.

Retries: the RPCs are PUT and DELETE. Taking down what is down only updates the reason and emits
nothing; restoring what is not down changes nothing. Every decision is audited after it commits:
successes, and refusals of a signed-in writer who may not act on the entity.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from catalog_svc.changes import CREATED, DELETED, Change, ChangeEvents
from catalog_svc.permissions import Editor, Permissions, check_writer
from catalog_svc.store import TrackRecord
from catalog_svc.write_store import Covered, TakedownRow, WriteStore, WriteTx
from meshkit import ids, paging, topics
from meshkit.audit import Record
from meshkit.context import current_caller
from meshkit.errors import InvalidArgument, NotFound, PermissionDenied

R = TypeVar("R")

# The collections of the HTTP paths, and the entity type each holds.
COLLECTIONS = {"tracks": "track", "albums": "album", "artists": "artist"}
MAX_REASON = 500


@dataclass(frozen=True)
class Target:
    """The entity a takedown request names."""

    entity_type: str
    entity_id: uuid.UUID

    @property
    def uri(self) -> str:
        return ids.uri(self.entity_type, self.entity_id)


@dataclass(frozen=True)
class Restored:
    target: Target
    was_taken_down: bool


def target(collection: str, key: str) -> Target:
    """INVALID_ARGUMENT unless `collection` is tracks, albums or artists and `key` an id of one."""
    entity_type = COLLECTIONS.get(collection)
    if entity_type is None:
        raise InvalidArgument(f"collection must be one of {', '.join(COLLECTIONS)}; got {collection!r}")
    return Target(entity_type, ids.parse_id_or_uri(key, entity_type))


def reason(text: str) -> str:
    """The reason, trimmed: 1..500 characters, no control characters but newlines."""
    value = text.strip()
    if not value:
        raise InvalidArgument("reason is required: say why")
    if len(value) > MAX_REASON:
        raise InvalidArgument(f"reason is longer than {MAX_REASON} characters ({len(value)})")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidArgument("reason holds a control character")
    return value


@dataclass(frozen=True)
class Takedowns:
    store: WriteStore
    permissions: Permissions
    events: ChangeEvents
    audit: Record
    # Announces the base62 ids of tracks whose answers changed (meshkit.evictions.announce).
    announce: Callable[[list[str]], Awaitable[None]]
    wake_outbox: Callable[[], None] | None = None

    async def list_all(self, collection: str, page: paging.Window) -> tuple[list[TakedownRow], int]:
        """Admins' view of what is down: the takedowns themselves, newest first."""
        current_caller().require_role("admin")
        entity_type = None
        if collection:
            entity_type = COLLECTIONS.get(collection)
            if entity_type is None:
                raise InvalidArgument(
                    f"collection must be empty or one of {', '.join(COLLECTIONS)}; got {collection!r}"
                )
        return await self.store.takedowns(entity_type, page.offset, page.limit)

    async def take_down(self, collection: str, key: str, reason_text: str) -> TakedownRow:
        check_writer()  # who may not write at all hears so before anything about the request
        wanted, why = target(collection, key), reason(reason_text)
        editor = await self.permissions.editor()

        async def change(tx: WriteTx) -> TakedownRow:
            prior = await tx.takedown(wanted.entity_id)
            if prior is not None and prior.by_admin:
                editor.require_admin("changing an admin's takedown")
            row = TakedownRow(wanted.entity_id, wanted.entity_type, why, editor.user_id, editor.is_admin)
            return await tx.put_takedown(row)

        return await self._change(wanted, editor, "catalog.take_down", {"reason": why}, change)

    async def restore(self, collection: str, key: str, reason_text: str) -> Restored:
        check_writer()
        wanted, why = target(collection, key), reason(reason_text)
        editor = await self.permissions.editor()

        async def change(tx: WriteTx) -> bool:
            prior = await tx.takedown(wanted.entity_id)
            if prior is None:
                return False
            if prior.by_admin:
                editor.require_admin("lifting an admin's takedown")
            await tx.delete_takedown(wanted.entity_id)
            return True

        was_down = await self._change(wanted, editor, "catalog.restore", {"reason": why}, change)
        return Restored(wanted, was_down)

    async def _change(
        self,
        wanted: Target,
        editor: Editor,
        action: str,
        details: dict[str, Any],
        change: Callable[[WriteTx], Awaitable[R]],
    ) -> R:
        """In one transaction: lock and authorize, `change`, and an event per entity whose
        visibility it flipped; then the audit entry (a refusal is audited too)."""
        try:
            async with self.store.transaction() as tx:
                await self._authorize(tx, wanted, editor)
                before = await tx.covered(wanted.entity_type, wanted.entity_id)
                result = await change(tx)
                after = await tx.covered(wanted.entity_type, wanted.entity_id)
                changes = _events(before, after, editor.user_id)
                for event in changes:
                    payload = self.events.change_event(event)
                    await tx.add_event(topics.CATALOG_CHANGES.name, ids.encode(event.entity_id), payload)
        except PermissionDenied:
            await self._audit(editor, action, wanted, details, success=False)
            raise
        if self.wake_outbox is not None:
            self.wake_outbox()
        await self.announce(
            [ids.encode(c.entity.track.id) for c in changes if isinstance(c.entity, TrackRecord)]
        )
        await self._audit(editor, action, wanted, details, success=True)
        return result

    @staticmethod
    async def _authorize(tx: WriteTx, wanted: Target, editor: Editor) -> None:
        """Lock the entity (NOT_FOUND when there is none) and check the editor may act on it."""
        what = f"{wanted.entity_type} {ids.encode(wanted.entity_id)}"
        if wanted.entity_type == "artist":
            if await tx.lock_artist(wanted.entity_id) is None:
                raise NotFound(f"{what} not found")
            editor.require_admin("taking down or restoring an artist")
            return
        album_id = wanted.entity_id
        if wanted.entity_type == "track":
            track = await tx.lock_track(wanted.entity_id)
            if track is None:
                raise NotFound(f"{what} not found")
            album_id = track.album_id
        album = await tx.lock_album(album_id)
        if album is None:
            raise NotFound(f"{what} not found")
        editor.require_manages([album.artist_id], wanted.entity_type)

    async def _audit(
        self, editor: Editor, action: str, wanted: Target, details: dict[str, Any], *, success: bool
    ) -> None:
        await self.audit(
            actor=editor.user_id,
            action=action,
            resource_type=wanted.entity_type,
            resource_id=wanted.entity_id,
            details=details,
            success=success,
        )


def _events(before: Covered, after: Covered, actor: uuid.UUID) -> list[Change]:
    """DELETED for each entity the reads showed and no longer do; CREATED, with its snapshot,
    for each they show again."""
    shown_before, shown_after = before.live(), after.live()
    gone = [Change(DELETED, actor, entity) for key, entity in shown_before.items() if key not in shown_after]
    back = [Change(CREATED, actor, entity) for key, entity in shown_after.items() if key not in shown_before]
    return gone + back
