"""playback_svc's view of catalog_svc: tracks (artists, duration, the Spotify object) and audio files.

playback never reads catalog's tables (ARCHITECTURE decision 3); it calls catalog over gRPC
and caches in-process, because the same few tracks are asked for on every stream start, every
counted stream and every player read, and what it needs from them changes rarely. Unknown
tracks are cached briefly too, so a client hammering a bogus id does not hammer catalog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import grpc
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshkit.errors import NotFound, Unavailable
from meshkit.ttlcache import TTLCache

log = logging.getLogger(__name__)

BATCH_LIMIT = 50  # BatchGetTracks takes at most 50 ids
TRACK_TTL_S = 300.0
UNKNOWN_TRACK_TTL_S = 30.0
_UNKNOWN = catalog_pb2.Track()  # sentinel stored for ids catalog does not know

_UNAVAILABLE_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


def _unavailable(exc: aio.AioRpcError, what: str) -> Unavailable:
    return Unavailable(f"catalog cannot answer {what} right now ({exc.code().name}); retry later")


class CatalogClient:
    """Cached reads from catalog_svc over one channel (which carries the caller's context)."""

    def __init__(
        self,
        channel: aio.Channel,
        *,
        audio_files_ttl_s: float = 30.0,
        max_tracks: int = 50_000,
    ) -> None:
        self._stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        self._tracks: TTLCache[str, catalog_pb2.Track] = TTLCache(max_tracks, TRACK_TTL_S)
        self._files: TTLCache[str, tuple[catalog_pb2.AudioFile, ...]] = TTLCache(10_000, audio_files_ttl_s)

    async def tracks(self, track_ids: Iterable[str]) -> dict[str, catalog_pb2.Track]:
        """The known tracks among ``track_ids`` (base62), from cache or one BatchGetTracks per 50 misses.

        Unknown ids are left out. Catalog errors propagate as Unavailable: callers either fail
        the request or, like the stream counter, retry the whole batch later.
        """
        wanted = list(dict.fromkeys(track_ids))
        found: dict[str, catalog_pb2.Track] = {}
        missing: list[str] = []
        for track_id in wanted:
            cached = self._tracks.get(track_id)
            if cached is None:
                missing.append(track_id)
            elif cached is not _UNKNOWN:
                found[track_id] = cached
        chunks = [missing[i : i + BATCH_LIMIT] for i in range(0, len(missing), BATCH_LIMIT)]
        replies = await asyncio.gather(*(self._batch_get(chunk) for chunk in chunks))
        for chunk, reply in zip(chunks, replies, strict=True):
            by_id = {track.id: track for track in reply.tracks}
            for track_id in chunk:
                track = by_id.get(track_id)
                if track is None:
                    self._tracks.put(track_id, _UNKNOWN, UNKNOWN_TRACK_TTL_S)
                else:
                    self._tracks.put(track_id, track)
                    found[track_id] = track
        return found

    async def track(self, track_id: str) -> catalog_pb2.Track | None:
        return (await self.tracks([track_id])).get(track_id)

    async def _batch_get(self, chunk: list[str]) -> catalog_pb2.BatchGetTracksResponse:
        try:
            return await self._stub.BatchGetTracks(catalog_pb2.BatchGetTracksRequest(ids=",".join(chunk)))
        except aio.AioRpcError as exc:
            if exc.code() in _UNAVAILABLE_CODES:
                raise _unavailable(exc, "BatchGetTracks") from exc
            raise

    async def audio_files(self, track_id: str) -> tuple[catalog_pb2.AudioFile, ...]:
        """The track's encoded files, lowest bitrate first; NotFound when catalog does not know it."""
        cached = self._files.get(track_id)
        if cached is not None:
            return cached
        try:
            reply = await self._stub.ListTrackAudioFiles(
                catalog_pb2.ListTrackAudioFilesRequest(track_id=track_id)
            )
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"track {track_id} not found") from exc
            if exc.code() in _UNAVAILABLE_CODES:
                raise _unavailable(exc, "ListTrackAudioFiles") from exc
            raise
        files = tuple(sorted(reply.audio_files, key=lambda f: f.bitrate_kbps))
        if files:  # an empty list may be an ingest in progress: ask again next time
            self._files.put(track_id, files)
        return files
