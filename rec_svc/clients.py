"""What rec asks catalog_svc, through the mesh's one catalog client (meshkit.catalog_client).

catalog_svc owns tracks, artists, genres and audio features; rec asks for them over gRPC and
never reads the catalog schema. This adapter speaks rec's language: UUID keys, and TrackMeta
for the model. Audio features come from ingest, which may not have run for a track: missing
features are normal and simply absent from the answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import grpc
from spotify.catalog.v1 import catalog_pb2

from meshkit import ids
from meshkit.catalog_client import CatalogClient
from meshkit.channels import is_status
from meshkit.ttlcache import TTLCache
from rec_svc.model.types import FEATURE_NAMES, TrackMeta

log = logging.getLogger(__name__)

SEARCH_PAGE = 50
# A bound on enumerating one genre through search (catalog_svc itself stops at offset 1000, as
# Spotify does: a genre with more tracks is only partly listed this way).
SEARCH_MAX_OFFSET = 10_000


class Catalog:
    """rec's reads of catalog_svc, keyed by UUID."""

    def __init__(self, client: CatalogClient) -> None:
        self.client = client

    @property
    def track_cache(self) -> TTLCache[str, catalog_pb2.Track]:
        """Track objects that fill in every list rec serves (a stored Discover Weekly is ids only)."""
        return self.client.track_cache

    async def tracks(self, track_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, catalog_pb2.Track]:
        """Full track objects by id; unknown ids are left out."""
        found = await self.client.tracks(ids.encode(t) for t in track_ids)
        return {ids.decode(key): track for key, track in found.items()}

    async def artists(self, artist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, catalog_pb2.Artist]:
        """Full artist objects (their genres are the tracks' genres)."""
        found = await self.client.artists(ids.encode(a) for a in artist_ids)
        return {ids.decode(key): artist for key, artist in found.items()}

    async def audio_features(self, track_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, float]]:
        """Features by track id; tracks without features (not ingested yet) are absent."""
        found = await self.client.audio_features(ids.encode(t) for t in track_ids)
        return {
            ids.decode(key): {name: float(getattr(f, name)) for name in FEATURE_NAMES}
            for key, f in found.items()
        }

    async def genres(self) -> list[str]:
        return await self.client.genres()

    async def enumerate_tracks(self) -> set[uuid.UUID]:
        """Every track the catalog can list, through `Search genre:<g>` (best effort).

        The catalog contract has no "list all tracks" RPC; rec otherwise learns of tracks from
        catalog.changes.v1 and from counted streams.
        """
        found: set[uuid.UUID] = set()
        for genre in await self.genres():
            offset = 0
            while offset < SEARCH_MAX_OFFSET:
                try:
                    reply = await self.client.search_tracks(
                        f'genre:"{genre}"', limit=SEARCH_PAGE, offset=offset
                    )
                except grpc.aio.AioRpcError as err:
                    if not is_status(err, grpc.StatusCode.INVALID_ARGUMENT):
                        raise
                    # Past the catalog's search offset limit: this genre is as listed as it gets.
                    log.info("enumerating genre %r stopped at offset %d: %s", genre, offset, err.details())
                    break
                page = reply.tracks.items
                found.update(ids.decode(t.id) for t in page)
                if len(page) < SEARCH_PAGE or not reply.tracks.next:
                    break
                offset += SEARCH_PAGE
        return found

    async def track_metas(self, track_ids: Iterable[uuid.UUID]) -> list[TrackMeta]:
        """TrackMeta for the tracks the catalog still has (genres come from their artists and album)."""
        tracks = await self.tracks(track_ids)
        artist_ids = {ids.decode(a.id) for t in tracks.values() for a in t.artists if a.id}
        artists = await self.artists(artist_ids) if artist_ids else {}
        features = await self.audio_features(tracks) if tracks else {}
        return [meta_of(t, artists, features.get(tid)) for tid, t in tracks.items()]


def meta_of(
    track: catalog_pb2.Track, artists: dict[uuid.UUID, catalog_pb2.Artist], features: dict[str, float] | None
) -> TrackMeta:
    artist_ids = tuple(ids.decode(a.id) for a in track.artists if a.id)
    genres: dict[str, None] = {}
    for a in artist_ids:
        if a in artists:
            genres.update(dict.fromkeys(artists[a].genres))
    genres.update(dict.fromkeys(track.album.genres))
    return TrackMeta(
        track_id=ids.decode(track.id),
        artist_ids=artist_ids,
        genres=tuple(genres),
        features=features,
        popularity=float(track.popularity),
    )
