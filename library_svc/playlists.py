"""Playlists: their details and sharing, items, collaborators and followers.

Who may see, edit or manage a playlist is decided here, and every change runs inside
`LibraryStore.edit`, which holds the playlist's row lock while permissions, the snapshot and
positions are checked and changed. Each write is retry-safe: the first answer to an idempotency
key is stored and replayed (meshkit.idempotency). Input is validated, and track URIs resolved
against the catalog, before anything is written, so a bad request changes nothing. Changes of who
may see or edit a playlist (sharing, collaborators) go to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from library_svc import rules
from library_svc.clients import Auth, Catalog
from library_svc.reorder import plan_move
from library_svc.rules import Sharing
from library_svc.store import KEEP, ItemRow, LibraryStore, PlaylistRow, PlaylistView
from meshkit import ids
from meshkit.catalog_client import taken_down
from meshkit.context import Caller
from meshkit.errors import DomainError, InvalidArgument, NotFound, PermissionDenied
from meshkit.idempotency import Idempotency, ValueCodec
from meshkit.paging import Window

log = logging.getLogger(__name__)


@asynccontextmanager
async def logged_playlist_update(caller: Caller, operation: str, playlist: str) -> AsyncIterator[None]:
    """The seed's "failed to update playlist" event for a write that raised: a warning when the
    client was told why (its status says it), an error with the traceback otherwise."""
    try:
        yield
    except Exception as exc:
        expected = isinstance(exc, DomainError)
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "failed to update playlist",
            extra={
                "operation": "playlist_update",
                "change": operation,
                "playlist_id": playlist,
                "user_id": ids.encode(caller.user_id) if caller.user_id else None,
                "error": str(exc),
            },
            exc_info=None if expected else exc,
        )
        raise


FIRST_PAGE = 100  # a playlist object embeds its first 100 items, as Spotify's does


@dataclass(frozen=True)
class ItemPage:
    """One page of a playlist's items, with the catalog's track objects and who added them."""

    playlist: PlaylistRow
    window: Window
    items: list[ItemRow]
    # by base62 id; a track the catalog no longer has is absent
    tracks: dict[str, catalog_pb2.Track]
    adders: dict[uuid.UUID, common_pb2.PublicUser]


@dataclass(frozen=True)
class PlaylistDetails:
    """A whole playlist: its row, owner, collaborators and first page of items."""

    playlist: PlaylistRow
    owner: common_pb2.PublicUser
    collaborators: list[uuid.UUID]
    items: ItemPage


@dataclass(frozen=True)
class PlaylistList:
    """One page of a list of playlists, with their owners' profiles."""

    window: Window
    total: int
    playlists: list[PlaylistRow]
    owners: dict[uuid.UUID, common_pb2.PublicUser]


@dataclass(frozen=True)
class Reorder:
    """Move items [range_start, range_start + range_length) in front of `insert_before`."""

    range_start: int
    insert_before: int
    range_length: int = 1


@dataclass(frozen=True)
class Replace:
    """Make the playlist hold exactly these tracks, in this order."""

    track_ids: list[uuid.UUID]


@dataclass(frozen=True)
class Playlists:
    store: LibraryStore
    catalog: Catalog
    auth: Auth
    idempotency: Idempotency

    # ---- playlists -------------------------------------------------------------------------

    async def create(
        self,
        caller: Caller,
        *,
        for_user: uuid.UUID | None,
        name: str,
        description: str,
        public: bool | None,
        collaborative: bool,
        key: str,
    ) -> PlaylistDetails:
        """A new playlist of the caller's (`for_user`, when given, must be the caller)."""
        owner_id = caller.require_user()
        if for_user is not None and for_user != owner_id:
            raise PermissionDenied("you can only create playlists for yourself")
        clean_name = rules.clean_name(name)
        clean_description = rules.clean_description(description)
        sharing = rules.resolve_sharing(None, public, collaborative)

        async def write() -> PlaylistRow:
            return await self.store.create_playlist(
                owner_id, clean_name, clean_description, sharing.public, sharing.collaborative
            )

        command = {"name": clean_name, "description": clean_description, "sharing": sharing}
        playlist = await self.idempotency.run(
            "library.CreatePlaylist", ids.encode(owner_id), key, command, ValueCodec(PlaylistRow), write
        )
        owner = await self.auth.user(owner_id)
        empty = ItemPage(playlist, Window(0, FIRST_PAGE), [], {}, {})
        return PlaylistDetails(playlist, owner, [], empty)

    async def get(self, caller: Caller, playlist_id: uuid.UUID) -> PlaylistDetails:
        """The playlist with its first page of items; NOT_FOUND unless the caller may see it."""
        return await self._details(await self._first_page(caller, playlist_id))

    async def update(
        self,
        caller: Caller,
        playlist_id: uuid.UUID,
        *,
        name: str | None,
        description: str | None,
        public: bool | None,
        collaborative: bool | None,
        key: str,
    ) -> PlaylistDetails:
        """Change the details given (None leaves one as it is; an empty description clears it).

        Editors may rename and describe; only the owner changes who may see and edit it.
        """
        user_id = caller.require_user()
        new_name = rules.clean_name(name) if name is not None else None
        new_description = rules.clean_description(description) if description is not None else KEEP

        async def write() -> PlaylistView:
            async with self.store.edit(playlist_id) as tx:
                if public is None and collaborative is None:
                    rules.require_edit(tx.playlist, tx.collaborators, caller)
                else:
                    rules.require_owner(tx.playlist, tx.collaborators, caller)
                current = Sharing(tx.playlist.is_public, tx.playlist.is_collaborative)
                sharing = rules.resolve_sharing(current, public, collaborative)
                tx.set_details(
                    name=new_name,
                    description=new_description,
                    public=sharing.public,
                    collaborative=sharing.collaborative,
                )
            if sharing != current:  # who may see and edit it changed: a permission change, audited
                await self.auth.audit(
                    actor=user_id,
                    action="playlist.update_sharing",
                    resource_type="playlist",
                    resource_id=playlist_id,
                    details={"before": asdict(current), "after": asdict(sharing)},
                    success=True,
                )
            return await self._first_page(caller, playlist_id)

        command = {
            "playlist": playlist_id,
            "name": name,
            "description": description,
            "public": public,
            "collaborative": collaborative,
        }
        view = await self.idempotency.run(
            "library.UpdatePlaylist", ids.encode(user_id), key, command, ValueCodec(PlaylistView), write
        )
        return await self._details(view)

    async def of_user(self, caller: Caller, user_id: uuid.UUID, window: Window) -> PlaylistList:
        """A user's playlists: all the caller's own (as /v1/me/playlists), else the public ones."""
        if user_id == caller.user_id:
            playlists, total = await self.store.my_playlists(user_id, window.offset, window.limit)
        else:
            playlists, total = await self.store.public_playlists(user_id, window.offset, window.limit)
        owners = await self.auth.users(p.owner_id for p in playlists)
        return PlaylistList(window, total, playlists, owners)

    # ---- items -----------------------------------------------------------------------------

    async def items(self, caller: Caller, playlist_id: uuid.UUID, window: Window) -> ItemPage:
        view = self._visible(await self.store.playlist_view(playlist_id, window.offset, window.limit), caller)
        tracks = await self.catalog.tracks(item.track_id for item in view.items)
        return ItemPage(view.playlist, window, view.items, tracks, self._adders(view.items))

    async def add_items(
        self,
        caller: Caller,
        playlist_id: uuid.UUID,
        track_ids: list[uuid.UUID],
        position: int | None,
        key: str,
    ) -> str:
        """Add the tracks not in the playlist yet at `position` (None: the end); the new snapshot id."""
        user_id = caller.require_user()
        if not track_ids:
            raise InvalidArgument("uris: at least one track URI is required")

        async def write() -> str:
            await self._editable(caller, playlist_id)  # cheap check first: no catalog calls for a 403/404
            await self._require_tracks(track_ids)
            async with self.store.edit(playlist_id) as tx:
                rules.require_edit(tx.playlist, tx.collaborators, caller)
                present = await tx.present(track_ids)
                new = [t for t in track_ids if t not in present]  # adding a present track is a no-op
                rules.check_room(tx.playlist.item_count, len(new))
                at = rules.check_insert_position(position, tx.playlist.item_count)
                await tx.insert(new, at, user_id)
                return rules.snapshot_id(tx.playlist)

        command = {"playlist": playlist_id, "tracks": track_ids, "position": position}
        return await self.idempotency.run(
            "library.AddPlaylistItems", ids.encode(user_id), key, command, ValueCodec(str), write
        )

    async def update_items(
        self, caller: Caller, playlist_id: uuid.UUID, change: Reorder | Replace, snapshot: str, key: str
    ) -> str:
        """Reorder or replace the items, based on `snapshot` (empty: whatever is current)."""
        user_id = caller.require_user()

        async def write() -> str:
            await self._editable(caller, playlist_id)
            if isinstance(change, Replace):
                await self._require_tracks(change.track_ids)
            async with self.store.edit(playlist_id) as tx:
                rules.require_edit(tx.playlist, tx.collaborators, caller)
                rules.check_snapshot(tx.playlist, snapshot)
                if isinstance(change, Reorder):
                    total = tx.playlist.item_count
                    await tx.move(
                        plan_move(total, change.range_start, change.insert_before, change.range_length)
                    )
                else:
                    await tx.replace(change.track_ids, user_id)
                return rules.snapshot_id(tx.playlist)

        command = {"playlist": playlist_id, "change": change, "snapshot": snapshot}
        return await self.idempotency.run(
            "library.UpdatePlaylistItems", ids.encode(user_id), key, command, ValueCodec(str), write
        )

    async def remove_items(
        self, caller: Caller, playlist_id: uuid.UUID, track_ids: list[uuid.UUID], snapshot: str, key: str
    ) -> str:
        """Remove the tracks (absent ones are skipped: deletes are idempotent); the new snapshot id."""
        user_id = caller.require_user()
        if not track_ids:
            raise InvalidArgument('items: at least one {"uri": "spotify:track:<id>"} is required')

        async def write() -> str:
            async with self.store.edit(playlist_id) as tx:
                rules.require_edit(tx.playlist, tx.collaborators, caller)
                rules.check_snapshot(tx.playlist, snapshot)
                await tx.remove(track_ids)
                return rules.snapshot_id(tx.playlist)

        command = {"playlist": playlist_id, "tracks": track_ids, "snapshot": snapshot}
        return await self.idempotency.run(
            "library.RemovePlaylistItems", ids.encode(user_id), key, command, ValueCodec(str), write
        )

    # ---- collaborators ---------------------------------------------------------------------

    async def add_collaborator(
        self, caller: Caller, playlist_id: uuid.UUID, user_id: uuid.UUID, key: str
    ) -> list[uuid.UUID]:
        """The owner lets `user_id` edit the playlist; the collaborators afterwards."""
        actor = caller.require_user()

        async def write() -> list[uuid.UUID]:
            async with self._audited(actor, "playlist.add_collaborator", playlist_id, user_id):
                found = await self.store.playlist(playlist_id)
                playlist = rules.require_owner(*_parts(found), caller)
                if user_id == playlist.owner_id:
                    raise InvalidArgument("the owner edits the playlist already")
                await self.auth.require_user(user_id)
                async with self.store.edit(playlist_id) as tx:
                    rules.require_owner(tx.playlist, tx.collaborators, caller)
                    await tx.add_collaborator(user_id, actor)
                    return list(tx.collaborators)

        return await self._collaborators_once(
            "AddPlaylistCollaborator", actor, playlist_id, user_id, key, write
        )

    async def remove_collaborator(
        self, caller: Caller, playlist_id: uuid.UUID, user_id: uuid.UUID, key: str
    ) -> list[uuid.UUID]:
        """The owner removes a collaborator, or a collaborator leaves; the collaborators afterwards."""
        actor = caller.require_user()

        async def write() -> list[uuid.UUID]:
            async with (
                self._audited(actor, "playlist.remove_collaborator", playlist_id, user_id),
                self.store.edit(playlist_id) as tx,
            ):
                rules.require_view(tx.playlist, tx.collaborators, caller)
                if actor not in (tx.playlist.owner_id, user_id):  # the owner, or leaving yourself
                    raise PermissionDenied("only the owner can remove other collaborators")
                await tx.remove_collaborator(user_id)
                return list(tx.collaborators)

        return await self._collaborators_once(
            "RemovePlaylistCollaborator", actor, playlist_id, user_id, key, write
        )

    async def _collaborators_once(
        self,
        rpc: str,
        actor: uuid.UUID,
        playlist_id: uuid.UUID,
        user_id: uuid.UUID,
        key: str,
        write: Callable[[], Awaitable[list[uuid.UUID]]],
    ) -> list[uuid.UUID]:
        command = {"playlist": playlist_id, "user": user_id}
        return await self.idempotency.run(
            f"library.{rpc}", ids.encode(actor), key, command, ValueCodec(list[uuid.UUID]), write
        )

    @asynccontextmanager
    async def _audited(
        self, actor: uuid.UUID, action: str, playlist_id: uuid.UUID, user_id: uuid.UUID
    ) -> AsyncIterator[None]:
        """Records a collaborator change in the audit log once it committed, or a refused attempt.

        Only refusals (403) of an authenticated caller are worth recording as failures; malformed
        input and invisible playlists are not permission changes.
        """

        async def record(success: bool) -> None:
            await self.auth.audit(
                actor=actor,
                action=action,
                resource_type="playlist",
                resource_id=playlist_id,
                details={"collaborator_id": ids.encode(user_id)},
                success=success,
            )

        try:
            yield
        except PermissionDenied:
            await record(False)
            raise
        await record(True)

    # ---- followers -------------------------------------------------------------------------

    async def follow(self, caller: Caller, playlist_id: uuid.UUID, key: str) -> None:
        """Follow a playlist the caller may see (following twice is fine)."""
        user_id = caller.require_user()

        async def write() -> None:
            found = await self.store.playlist(playlist_id)
            rules.require_view(*_parts(found), caller)
            await self.store.follow(playlist_id, user_id)

        await self.idempotency.run(
            "library.FollowPlaylist", ids.encode(user_id), key, playlist_id, ValueCodec(None), write
        )

    async def unfollow(self, caller: Caller, playlist_id: uuid.UUID, key: str) -> None:
        """Stop following (unfollowing twice is fine); NOT_FOUND only if the playlist does not exist."""
        user_id = caller.require_user()

        async def write() -> None:
            if await self.store.playlist(playlist_id) is None:
                raise NotFound("playlist not found")
            await self.store.unfollow(playlist_id, user_id)

        await self.idempotency.run(
            "library.UnfollowPlaylist", ids.encode(user_id), key, playlist_id, ValueCodec(None), write
        )

    # ---- helpers ---------------------------------------------------------------------------

    async def _first_page(self, caller: Caller, playlist_id: uuid.UUID) -> PlaylistView:
        return self._visible(await self.store.playlist_view(playlist_id, 0, FIRST_PAGE), caller)

    async def _details(self, view: PlaylistView) -> PlaylistDetails:
        """The playlist with its owner's profile and its first page's track objects."""
        tracks, owner = await asyncio.gather(
            self.catalog.tracks(item.track_id for item in view.items),
            self.auth.user(view.playlist.owner_id),
        )
        adders = self._adders(view.items)
        adders[view.playlist.owner_id] = owner
        items = ItemPage(view.playlist, Window(0, FIRST_PAGE), view.items, tracks, adders)
        return PlaylistDetails(view.playlist, owner, view.collaborators, items)

    @staticmethod
    def _visible(view: PlaylistView | None, caller: Caller) -> PlaylistView:
        if view is None:
            raise NotFound("playlist not found")
        rules.require_view(view.playlist, view.collaborators, caller)
        return view

    def _adders(self, items: Iterable[ItemRow]) -> dict[uuid.UUID, common_pb2.PublicUser]:
        """`added_by` objects: Spotify's minimal user reference, built without a call to auth."""
        adders = {item.added_by for item in items if item.added_by is not None}
        return {user_id: self.auth.user_ref(user_id) for user_id in adders}

    async def _editable(self, caller: Caller, playlist_id: uuid.UUID) -> None:
        """NOT_FOUND / PERMISSION_DENIED before any expensive validation (re-checked under the lock)."""
        rules.require_edit(*_parts(await self.store.playlist(playlist_id)), caller)

    async def _require_tracks(self, track_ids: Sequence[uuid.UUID]) -> None:
        """INVALID_ARGUMENT naming every track the catalog does not know, and every one taken
        down (a playlist keeps those it has, shown as unplayable, but gains none)."""
        found = await self.catalog.tracks(track_ids)
        unknown = [ids.uri("track", t) for t in track_ids if ids.encode(t) not in found]
        if unknown:
            raise InvalidArgument(f"uris: no such tracks in the catalog: {', '.join(unknown)}")
        withdrawn = [ids.uri("track", t) for t in track_ids if taken_down(found[ids.encode(t)])]
        if withdrawn:
            raise InvalidArgument(f"uris: these tracks were taken down: {', '.join(withdrawn)}")


def _parts(view: PlaylistView | None) -> tuple[PlaylistRow | None, list[uuid.UUID]]:
    """A found playlist's row and collaborators (None and none when it does not exist)."""
    return (None, []) if view is None else (view.playlist, view.collaborators)
