"""The one typed client of catalog_svc that playback, library and rec call it through.

No service reads catalog's tables (docs/architecture.md, decision 3): they ask catalog over gRPC,
in the batch sizes its RPCs allow, several batches at once, with the channel's deadline. Keys
are the wire's base62 ids; unknown ids are left out of every answer.

Failures become domain errors that say whose they were: a single object catalog does not know
is NotFound, anything else catalog cannot answer is Unavailable ("retry later"), so a caller
either fails its request with a clear status or, like the stream counter, retries its batch.

Caching is the caller's choice, because callers differ: playback reads the same few tracks on
every stream start and also remembers unknown ids briefly, for tracks and their audio files
alike (a client hammering a bogus id must not hammer catalog); library and rec cache found
tracks only; a batch job caches nothing. What must show at once (a takedown) evicts entries
through `forget` (meshkit.evictions); an answer loaded while an eviction happened is not kept,
so a read that raced the takedown cannot put the old answer back for a whole TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import grpc
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshkit.errors import FailedPrecondition, NotFound, Unavailable
from meshkit.ttlcache import TTLCache

T = TypeVar("T")

TRACK_BATCH = 50  # BatchGetTracks' limit
ARTIST_BATCH = 50  # BatchGetArtists' limit
ALBUM_BATCH = 20  # BatchGetAlbums' limit
FEATURE_BATCH = 100  # BatchGetAudioFeatures' limit
# Batches in flight at once: a batch build asks for the whole catalog.
CONCURRENCY = 8

# restrictions.reason of a track taken down (catalog sets it; library tells it apart by it).
TAKEDOWN = "takedown"

_UNKNOWN = catalog_pb2.Track()  # stored for ids catalog does not know, when the caller asks for it


def _unavailable(what: str, exc: aio.AioRpcError) -> Unavailable:
    return Unavailable(f"catalog_svc {what} failed ({exc.code().name}); retry later")


class CatalogClient:
    """Reads from catalog_svc over one channel (which carries the caller's context)."""

    def __init__(
        self,
        channel: aio.Channel,
        *,
        track_cache: TTLCache[str, catalog_pb2.Track] | None = None,
        unknown_track_ttl_s: float = 0.0,
        audio_files_cache: TTLCache[str, tuple[catalog_pb2.AudioFile, ...]] | None = None,
        include_unavailable: bool = False,
    ) -> None:
        self.stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        self.track_cache = track_cache if track_cache is not None else TTLCache(0, 0)
        # Unknown ids are remembered this long (0: asked for again every time).
        self.unknown_track_ttl_s = unknown_track_ttl_s
        self.audio_files_cache = audio_files_cache if audio_files_cache is not None else TTLCache(0, 0)
        # Tracks taken down come too, marked is_playable false (library lists them as unavailable).
        self.include_unavailable = include_unavailable
        # Counts evictions: an answer loaded across one is not cached.
        self._generation = 0

    def forget(self, keys: Iterable[str]) -> None:
        """Drop what is cached about these tracks (their objects, audio files, unknown marks)."""
        wanted = list(keys)
        self._generation += 1
        self.track_cache.discard(wanted)
        self.audio_files_cache.discard(wanted)

    def forget_all(self) -> None:
        """Drop every cached answer (after evictions may have been missed)."""
        self._generation += 1
        self.track_cache.clear()
        self.audio_files_cache.clear()

    async def tracks(self, keys: Iterable[str]) -> dict[str, catalog_pb2.Track]:
        """Full track objects: cached ones, the rest with one BatchGetTracks per 50 ids."""
        wanted = list(dict.fromkeys(keys))
        cached = self.track_cache.get_many(wanted)
        found = {key: track for key, track in cached.items() if track is not _UNKNOWN}
        missing = [key for key in wanted if key not in cached]
        if not missing:
            return found

        async def batch(joined: str) -> Sequence[catalog_pb2.Track]:
            request = catalog_pb2.BatchGetTracksRequest(
                ids=joined, include_unavailable=self.include_unavailable
            )
            reply = await self.stub.BatchGetTracks(request)
            return reply.tracks

        generation = self._generation
        loaded = await _batched(missing, TRACK_BATCH, batch, "BatchGetTracks")
        if generation != self._generation:  # an eviction happened meanwhile: keep nothing
            found.update(loaded)
            return found
        self.track_cache.put_many(loaded.items())
        if self.unknown_track_ttl_s > 0:
            unknown = [(key, _UNKNOWN) for key in missing if key not in loaded]
            self.track_cache.put_many(unknown, self.unknown_track_ttl_s)
        found.update(loaded)
        return found

    async def track(self, key: str) -> catalog_pb2.Track | None:
        return (await self.tracks([key])).get(key)

    async def albums(self, keys: Iterable[str]) -> dict[str, catalog_pb2.Album]:
        """Full album objects, 20 per BatchGetAlbums."""

        async def batch(joined: str) -> Sequence[catalog_pb2.Album]:
            reply = await self.stub.BatchGetAlbums(catalog_pb2.BatchGetAlbumsRequest(ids=joined))
            return reply.albums

        return await _batched(list(dict.fromkeys(keys)), ALBUM_BATCH, batch, "BatchGetAlbums")

    async def artists(self, keys: Iterable[str]) -> dict[str, catalog_pb2.Artist]:
        """Full artist objects, 50 per BatchGetArtists."""

        async def batch(joined: str) -> Sequence[catalog_pb2.Artist]:
            reply = await self.stub.BatchGetArtists(catalog_pb2.BatchGetArtistsRequest(ids=joined))
            return reply.artists

        return await _batched(list(dict.fromkeys(keys)), ARTIST_BATCH, batch, "BatchGetArtists")

    async def audio_features(self, keys: Iterable[str]) -> dict[str, catalog_pb2.AudioFeatures]:
        """Audio features, 100 per BatchGetAudioFeatures; tracks not ingested yet are absent."""

        async def batch(joined: str) -> Sequence[catalog_pb2.AudioFeatures]:
            reply = await self.stub.BatchGetAudioFeatures(
                catalog_pb2.BatchGetAudioFeaturesRequest(ids=joined)
            )
            return reply.audio_features

        return await _batched(list(dict.fromkeys(keys)), FEATURE_BATCH, batch, "BatchGetAudioFeatures")

    async def audio_files(self, key: str) -> tuple[catalog_pb2.AudioFile, ...]:
        """The track's encoded files, lowest bitrate first; NotFound when catalog does not know it
        (remembered, like an unknown id of `tracks`, when the caller asked for that),
        FailedPrecondition when it was taken down."""
        cached = self.audio_files_cache.get(key)
        if cached is not None:
            return cached
        if self.track_cache.get(key) is _UNKNOWN:
            raise NotFound(f"track {key} not found")
        request = catalog_pb2.ListTrackAudioFilesRequest(track_id=key)
        generation = self._generation
        try:
            reply = await _one("ListTrackAudioFiles", f"track {key}", self.stub.ListTrackAudioFiles(request))
        except NotFound:
            if self.unknown_track_ttl_s > 0 and generation == self._generation:  # like tracks()'s
                self.track_cache.put(key, _UNKNOWN, self.unknown_track_ttl_s)
            raise
        files = tuple(sorted(reply.audio_files, key=lambda f: f.bitrate_kbps))
        # An empty list may be an ingest in progress: ask again next time.
        if files and generation == self._generation:
            self.audio_files_cache.put(key, files)
        return files

    async def genres(self) -> list[str]:
        """Every genre the catalog knows, through all pages of ListGenres."""
        names: list[str] = []
        token = ""
        while True:
            try:
                reply = await self.stub.ListGenres(catalog_pb2.ListGenresRequest(page_token=token))
            except aio.AioRpcError as exc:
                raise _unavailable("ListGenres", exc) from exc
            names.extend(reply.genres)
            token = reply.next_page_token
            if not token:
                return names

    async def search_tracks(self, q: str, *, limit: int, offset: int) -> catalog_pb2.SearchResponse:
        """One page of a track search; INVALID_ARGUMENT (past the offset limit) comes back as it is."""
        request = catalog_pb2.SearchRequest(q=q, type="track", limit=limit, offset=offset)
        try:
            return await self.stub.Search(request)
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise
            raise _unavailable("Search", exc) from exc

    async def album_tracks(self, key: str, *, limit: int, offset: int) -> catalog_pb2.TrackPage:
        """One page of an album's tracks, in album order; NotFound when catalog does not know it."""
        request = catalog_pb2.ListAlbumTracksRequest(id=key, limit=limit, offset=offset)
        return await _one("ListAlbumTracks", f"album {key}", self.stub.ListAlbumTracks(request))

    async def artist_top_tracks(self, key: str) -> list[catalog_pb2.Track]:
        """An artist's most popular tracks, most popular first; NotFound when catalog does not know it."""
        request = catalog_pb2.ListArtistTopTracksRequest(id=key)
        reply = await _one("ListArtistTopTracks", f"artist {key}", self.stub.ListArtistTopTracks(request))
        return list(reply.tracks)


def taken_down(track: catalog_pb2.Track) -> bool:
    """Whether catalog answered `track` only because it was asked for unavailable ones too."""
    return track.restrictions.reason == TAKEDOWN


async def _one(what: str, subject: str, call: Awaitable[T]) -> T:
    """The answer of a call about one object: NotFound when catalog does not know it,
    FailedPrecondition in catalog's words when it will not hand it out (taken down), else Unavailable."""
    try:
        return await call
    except aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"{subject} not found") from exc
        if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
            raise FailedPrecondition(exc.details() or f"{subject} is not available") from exc
        raise _unavailable(what, exc) from exc


async def _batched(
    keys: Sequence[str], size: int, call: Callable[[str], Awaitable[Sequence[T]]], what: str
) -> dict[str, T]:
    """Objects by id from a comma-separated batch RPC, `size` ids a call, CONCURRENCY calls at once."""
    if not keys:
        return {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(joined: str) -> Sequence[T]:
        async with gate:  # a gRPC call starts when it is created: create it only once it may run
            return await call(joined)

    try:
        replies = await asyncio.gather(
            *(one(",".join(keys[start : start + size])) for start in range(0, len(keys), size))
        )
    except aio.AioRpcError as exc:
        raise _unavailable(what, exc) from exc
    return {obj.id: obj for reply in replies for obj in reply}  # type: ignore[attr-defined]
