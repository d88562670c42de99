"""Search: one page per requested type, each searched and then loaded as objects, all types at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog_svc.search_query import SearchQuery
from catalog_svc.search_store import SearchStore
from catalog_svc.store import AlbumRecord, ArtistRow, CatalogStore, Page, TrackRecord
from meshkit.paging import Window

# Spotify's limit for search
MAX_OFFSET = 1000


@dataclass(frozen=True)
class SearchResults:
    """A page of each type that was asked for (None for the others), best first."""

    tracks: Page[TrackRecord] | None = None
    albums: Page[AlbumRecord] | None = None
    artists: Page[ArtistRow] | None = None


class Search:
    def __init__(self, store: SearchStore, catalog: CatalogStore) -> None:
        self.store = store
        self.catalog = catalog

    async def search(self, query: SearchQuery, types: Sequence[str], window: Window) -> SearchResults:
        pages = await asyncio.gather(*(self._page(kind, query, window) for kind in types))
        found = dict(zip(types, pages, strict=True))
        return SearchResults(
            tracks=found.get("track"), albums=found.get("album"), artists=found.get("artist")
        )

    async def _page(self, kind: str, query: SearchQuery, window: Window) -> Page[Any]:
        """`total` and the page's objects, best first (an object deleted since the search drops out)."""
        hits = await self.store.search(kind, query, window.limit, window.offset)
        load: dict[str, Callable[[Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, Any]]]] = {
            "track": self.catalog.tracks_by_id,
            "album": self.catalog.albums_by_id,
            "artist": self.catalog.artists_by_id,
        }
        objects = await load[kind](hits.ids)
        return Page([objects[key] for key in hits.ids if key in objects], hits.total)
