"""The user's library: saved tracks and albums, followed artists, and playlists saved by following.

Saving checks that every item exists (in the catalog, or a playlist the user may see) before
anything is written, so a bad request saves nothing. Saves and removals are retry-safe through
meshkit.idempotency, and naturally idempotent besides (saving again keeps the first saved_at).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from spotify.catalog.v1 import catalog_pb2

from library_svc import rules
from library_svc.clients import Catalog
from library_svc.store import LibraryStore, SavedRow
from meshkit import ids
from meshkit.catalog_client import taken_down
from meshkit.context import Caller
from meshkit.errors import InvalidArgument
from meshkit.idempotency import Idempotency, ValueCodec
from meshkit.paging import Window

T = TypeVar("T")

# (type, id) pairs of a library request: track, album, artist or playlist
LibraryItems = Sequence[tuple[str, uuid.UUID]]


@dataclass(frozen=True)
class SavedPage(Generic[T]):
    """One page of saved items of one type, with the catalog's objects by base62 id."""

    window: Window
    total: int
    saved: list[SavedRow]
    objects: dict[str, T]


@dataclass(frozen=True)
class FollowedArtists:
    """One cursor page of followed artists: ids in id order, their objects, and whether more follow."""

    artist_ids: list[uuid.UUID]
    total: int
    artists: dict[str, catalog_pb2.Artist]
    more: bool


@dataclass(frozen=True)
class SavedItems:
    store: LibraryStore
    catalog: Catalog
    idempotency: Idempotency

    async def save(self, caller: Caller, items: LibraryItems, key: str) -> None:
        """Save tracks, albums and artists (following an artist); saving a playlist follows it."""
        user_id = caller.require_user()

        async def write() -> None:
            await self._require_items(caller, items)
            await self.store.save(user_id, _not_playlists(items))
            for playlist_id in _playlists(items):
                await self.store.follow(playlist_id, user_id)

        await self._once("SaveLibraryItems", user_id, key, items, write)

    async def remove(self, caller: Caller, items: LibraryItems, key: str) -> None:
        """Remove from the library (absent items are skipped); removing a playlist unfollows it."""
        user_id = caller.require_user()

        async def write() -> None:
            await self.store.unsave(user_id, _not_playlists(items))
            for playlist_id in _playlists(items):
                await self.store.unfollow(playlist_id, user_id)

        await self._once("RemoveLibraryItems", user_id, key, items, write)

    async def contains(self, caller: Caller, items: LibraryItems) -> list[bool]:
        """Whether each item is in the caller's library, in the order asked."""
        user_id = caller.require_user()
        saved = await self.store.saved(user_id, _not_playlists(items))
        followed = await self.store.following(user_id, _playlists(items))
        return [
            item_id in followed if kind == "playlist" else (kind, item_id) in saved for kind, item_id in items
        ]

    async def tracks(self, caller: Caller, window: Window) -> SavedPage[catalog_pb2.Track]:
        """Saved tracks, newest first."""
        saved, total = await self.store.saved_page(
            caller.require_user(), "track", window.offset, window.limit
        )
        return SavedPage(window, total, saved, await self.catalog.tracks(s.item_id for s in saved))

    async def albums(self, caller: Caller, window: Window) -> SavedPage[catalog_pb2.Album]:
        """Saved albums, newest first."""
        saved, total = await self.store.saved_page(
            caller.require_user(), "album", window.offset, window.limit
        )
        return SavedPage(window, total, saved, await self.catalog.albums(s.item_id for s in saved))

    async def followed_artists(self, caller: Caller, limit: int, after: uuid.UUID | None) -> FollowedArtists:
        """Followed artists in id order after the cursor `after`, at most `limit`."""
        found, total = await self.store.saved_after(caller.require_user(), "artist", after, limit + 1)
        page = found[:limit]
        return FollowedArtists(page, total, await self.catalog.artists(page), len(found) > limit)

    async def _once(
        self,
        rpc: str,
        user_id: uuid.UUID,
        key: str,
        items: LibraryItems,
        write: Callable[[], Awaitable[None]],
    ) -> None:
        """Run a change of the library once per idempotency key."""
        await self.idempotency.run(
            f"library.{rpc}", ids.encode(user_id), key, list(items), ValueCodec(None), write
        )

    async def _require_items(self, caller: Caller, items: LibraryItems) -> None:
        """INVALID_ARGUMENT naming every URI that does not resolve (invisible playlists and tracks
        taken down included: saved ones stay listed, as unplayable, but none is newly saved)."""

        def of(kind: str) -> list[uuid.UUID]:
            return [i for k, i in items if k == kind]

        tracks, albums, artists = await asyncio.gather(
            self.catalog.tracks(of("track")),
            self.catalog.albums(of("album")),
            self.catalog.artists(of("artist")),
        )
        live_tracks = {k for k, track in tracks.items() if not taken_down(track)}
        known = (
            {("track", k) for k in live_tracks}
            | {("album", k) for k in albums}
            | {("artist", k) for k in artists}
        )
        for playlist_id in of("playlist"):
            found = await self.store.playlist(playlist_id)
            if found is not None and rules.can_view(found.playlist, found.collaborators, caller):
                known.add(("playlist", ids.encode(playlist_id)))
        unknown = [ids.uri(k, i) for k, i in items if (k, ids.encode(i)) not in known]
        if unknown:
            raise InvalidArgument(f"uris: not found: {', '.join(unknown)}")


def _not_playlists(items: LibraryItems) -> list[tuple[str, uuid.UUID]]:
    """The items kept as saved rows (a saved playlist is a follow instead)."""
    return [(kind, item_id) for kind, item_id in items if kind != "playlist"]


def _playlists(items: LibraryItems) -> list[uuid.UUID]:
    return [item_id for kind, item_id in items if kind == "playlist"]
