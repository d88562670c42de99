"""What rec asks catalog_svc, in the batch sizes its RPCs allow, with deadlines from the channel.

catalog_svc owns tracks, artists, genres and audio features; rec asks for them over gRPC
and never reads the catalog schema. Audio features come from ingest, which may not have run
for a track (or at all): missing features are normal and simply absent from the answer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import TypeVar

import grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshkit import ids
from meshkit.channels import is_status
from meshkit.ttlcache import TTLCache
from rec_svc.model.types import FEATURE_NAMES, TrackMeta

log = logging.getLogger(__name__)
T = TypeVar("T")

TRACK_BATCH = 50  # BatchGetTracks' limit
ARTIST_BATCH = 50  # BatchGetArtists' limit
FEATURE_BATCH = 100  # BatchGetAudioFeatures' limit
SEARCH_PAGE = 50
# A bound on enumerating one genre through search (catalog_svc itself stops at offset 1000, as
# Spotify does: a genre with more tracks is only partly listed this way).
SEARCH_MAX_OFFSET = 10_000
# An RPC a catalog build may not offer yet (or a request it rejects) is skipped, not fatal.
_OPTIONAL = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT)


CONCURRENCY = 8  # batches in flight at once (a build asks for the whole catalog)


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _bounded(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls (started only when a slot is free: a gRPC call starts when created) in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


class CatalogClient:
    def __init__(
        self,
        stub: catalog_pb2_grpc.CatalogServiceStub,
        track_cache: TTLCache[uuid.UUID, catalog_pb2.Track] | None = None,
    ) -> None:
        self.stub = stub
        # Track objects that fill in every list rec serves (a stored Discover Weekly is ids only);
        # off unless the server passes one (the batch job wants fresh objects).
        self.track_cache = track_cache if track_cache is not None else TTLCache(0, 0)

    async def tracks(self, track_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, catalog_pb2.Track]:
        """Full track objects by id: cached ones, the rest with one BatchGetTracks per 50 (the
        batches concurrently). Unknown ids are left out, and never cached."""

        async def load(missing: list[uuid.UUID]) -> dict[uuid.UUID, catalog_pb2.Track]:
            keys = [ids.encode(t) for t in missing]
            replies = await _bounded(
                [
                    partial(self.stub.BatchGetTracks, catalog_pb2.BatchGetTracksRequest(ids=",".join(chunk)))
                    for chunk in _chunks(keys, TRACK_BATCH)
                ]
            )
            return {ids.decode(t.id): t for reply in replies for t in reply.tracks}

        return await self.track_cache.get_or_load(track_ids, load)

    async def artists(self, artist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, catalog_pb2.Artist]:
        """Full artist objects (their genres are the tracks' genres); empty if the RPC is not there yet."""
        keys = list(dict.fromkeys(ids.encode(a) for a in artist_ids))
        try:
            replies = await _bounded(
                [
                    partial(
                        self.stub.BatchGetArtists, catalog_pb2.BatchGetArtistsRequest(ids=",".join(chunk))
                    )
                    for chunk in _chunks(keys, ARTIST_BATCH)
                ]
            )
        except grpc.aio.AioRpcError as err:
            if is_status(err, grpc.StatusCode.UNIMPLEMENTED):
                log.info("artists unavailable: %s", err.details())
                return {}
            raise
        return {ids.decode(a.id): a for reply in replies for a in reply.artists}

    async def audio_features(self, track_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, float]]:
        """Features by track id; tracks without features (not ingested yet) are simply absent."""
        keys = list(dict.fromkeys(ids.encode(t) for t in track_ids))
        out: dict[uuid.UUID, dict[str, float]] = {}
        for chunk in _chunks(keys, FEATURE_BATCH):
            try:
                reply = await self.stub.BatchGetAudioFeatures(
                    catalog_pb2.BatchGetAudioFeaturesRequest(ids=",".join(chunk))
                )
            except grpc.aio.AioRpcError as err:
                if is_status(err, *_OPTIONAL, grpc.StatusCode.NOT_FOUND):
                    log.info("audio features unavailable: %s", err.details())
                    return out
                raise
            for f in reply.audio_features:
                out[ids.decode(f.id)] = {name: float(getattr(f, name)) for name in FEATURE_NAMES}
        return out

    async def genres(self) -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            reply = await self.stub.ListGenres(catalog_pb2.ListGenresRequest(page_token=token))
            names.extend(reply.genres)
            token = reply.next_page_token
            if not token:
                return names

    async def enumerate_tracks(self) -> set[uuid.UUID]:
        """Every track the catalog can list, through `Search genre:<g>` (best effort).

        The catalog contract has no "list all tracks" RPC; rec otherwise learns of tracks from
        catalog.changes.v1 and from counted streams. A catalog whose search is not there yet
        yields nothing here rather than failing the build.
        """
        found: set[uuid.UUID] = set()
        for genre in await self.genres():
            offset = 0
            while offset < SEARCH_MAX_OFFSET:
                try:
                    reply = await self.stub.Search(
                        catalog_pb2.SearchRequest(
                            q=f'genre:"{genre}"', type="track", limit=SEARCH_PAGE, offset=offset
                        )
                    )
                except grpc.aio.AioRpcError as err:
                    if is_status(err, grpc.StatusCode.UNIMPLEMENTED):
                        log.info("catalog search unavailable for enumeration: %s", err.details())
                        return found
                    if is_status(err, grpc.StatusCode.INVALID_ARGUMENT):
                        # Past the catalog's search offset limit (or a genre search cannot
                        # express): this genre is as listed as it gets; go on with the next.
                        log.info(
                            "enumerating genre %r stopped at offset %d: %s", genre, offset, err.details()
                        )
                        break
                    raise
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
