"""Reading the catalog: tracks, albums, artists, their audio features and the genres.

Reads need no permission. Multi-gets answer one entry per requested id, in request order, with
None where an id is unknown; a lookup of one entity answers None when it does not exist (the
servicer says NOT_FOUND in the caller's own words).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence

from catalog_svc.rules import ALBUM_TRACKS_LIMIT
from catalog_svc.store import (
    AlbumRecord,
    ArtistRow,
    AudioFeaturesRow,
    CatalogStore,
    GroupedAlbum,
    Page,
    TrackRecord,
)
from meshkit.paging import Window


class NoFeatures(enum.Enum):
    """Why a track has no audio features to show."""

    NO_TRACK = "no such track"
    NOT_INGESTED = "its audio is not ingested yet"


class Reads:
    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    # ---- tracks -------------------------------------------------------------------------------

    async def track(self, track_id: uuid.UUID) -> TrackRecord | None:
        return (await self.store.tracks_by_id([track_id])).get(track_id)

    async def tracks(
        self, track_ids: Sequence[uuid.UUID], *, include_withdrawn: bool = False
    ) -> list[TrackRecord | None]:
        found = await self.store.tracks_by_id(track_ids, include_withdrawn=include_withdrawn)
        return [found.get(t) for t in track_ids]

    async def audio_features(self, track_id: uuid.UUID) -> AudioFeaturesRow | NoFeatures:
        found = await self.store.audio_features([track_id])
        if track_id in found:
            return found[track_id]
        if await self.store.tracks_by_id([track_id]):
            return NoFeatures.NOT_INGESTED
        return NoFeatures.NO_TRACK

    async def several_audio_features(self, track_ids: Sequence[uuid.UUID]) -> list[AudioFeaturesRow | None]:
        found = await self.store.audio_features(track_ids)
        return [found.get(t) for t in track_ids]

    # ---- albums -------------------------------------------------------------------------------

    async def album(self, album_id: uuid.UUID) -> AlbumRecord | None:
        return (await self.albums([album_id]))[0]

    async def albums(self, album_ids: Sequence[uuid.UUID]) -> list[AlbumRecord | None]:
        found = await self.store.albums_by_id(album_ids, tracks_limit=ALBUM_TRACKS_LIMIT)
        return [found.get(a) for a in album_ids]

    async def album_tracks(self, album_id: uuid.UUID, window: Window) -> Page[TrackRecord] | None:
        """One page of the album's tracks in disc/track order; None when there is no such album."""
        return await self.store.album_tracks(album_id, window.limit, window.offset)

    # ---- artists ------------------------------------------------------------------------------

    async def artist(self, artist_id: uuid.UUID) -> ArtistRow | None:
        return await self.store.artist(artist_id)

    async def artists(self, artist_ids: Sequence[uuid.UUID]) -> list[ArtistRow | None]:
        found = await self.store.artists_by_id(artist_ids)
        return [found.get(a) for a in artist_ids]

    async def artist_albums(
        self, artist_id: uuid.UUID, groups: Sequence[str], window: Window
    ) -> Page[GroupedAlbum] | None:
        """One page of the artist's discography in `groups`; None when there is no such artist."""
        if await self.store.artist(artist_id) is None:
            return None
        return await self.store.artist_albums(artist_id, groups, window.limit, window.offset)

    async def artist_top_tracks(self, artist_id: uuid.UUID) -> list[TrackRecord] | None:
        """The artist's most streamed tracks; None when there is no such artist."""
        if await self.store.artist(artist_id) is None:
            return None
        return await self.store.artist_top_tracks(artist_id)

    async def genres(self, window: Window) -> Page[str]:
        """A page of every genre some artist carries, sorted."""
        genres = await self.store.genres()
        return Page(genres[window.offset : window.offset + window.limit], len(genres))
