"""What playback asks other services, in playback's terms.

* catalog_svc, through the mesh's one catalog client (meshkit.catalog_client): tracks (their
  duration and credited artists, and the object a client is shown) and audio files. playback
  reads the same few tracks on every stream start, counted stream and player read, so it caches
  them in-process, and remembers unknown ids briefly too: a client hammering a bogus id must not
  hammer catalog.
* what a context URI plays: an album's tracks or an artist's top tracks (catalog), a playlist's
  items (library_svc), asked with the caller's metadata so a private playlist stays private.
* auth_svc: which artists the caller manages.

playback never reads another service's tables; catalog errors arrive as NotFound (an unknown
object) or Unavailable (retry later), so a request fails with a clear status and the stream
counter retries its batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc

from meshkit import ids
from meshkit.catalog_client import CatalogClient
from meshkit.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable
from meshkit.ttlcache import TTLCache

TRACK_CACHE_SIZE = 50_000
TRACK_TTL_S = 300.0
UNKNOWN_TRACK_TTL_S = 30.0
AUDIO_FILES_CACHE_SIZE = 10_000
# Renditions a stream may play (previews are not streams).
STREAM_QUALITIES = frozenset(
    {catalog_pb2.AUDIO_QUALITY_LOW, catalog_pb2.AUDIO_QUALITY_NORMAL, catalog_pb2.AUDIO_QUALITY_HIGH}
)

MAX_QUEUE = 500
CONTEXT_KINDS = ("album", "playlist", "artist")
_PAGE = 50


@dataclass(frozen=True)
class Track:
    """A catalog track as playback uses it; ``object`` is what clients are shown, passed on untouched."""

    id: str
    duration_ms: int
    # Credited artists' base62 ids, in credit order (as catalog has them: not validated here).
    artist_ids: tuple[str, ...]
    object: catalog_pb2.Track


@dataclass(frozen=True)
class AudioFile:
    """One encoded rendition of a track, as a stream or download may use it."""

    bitrate_kbps: int
    codec: str
    storage_path: str
    seek_index_path: str
    duration_ms: int
    # A full-length rendition (low, normal or high), not a preview.
    streamable: bool


def track_of(track: catalog_pb2.Track) -> Track:
    return Track(
        id=track.id,
        duration_ms=track.duration_ms,
        artist_ids=tuple(a.id for a in track.artists if a.id),
        object=track,
    )


def audio_file_of(file: catalog_pb2.AudioFile) -> AudioFile:
    streamable = file.quality in STREAM_QUALITIES
    return AudioFile(
        file.bitrate_kbps, file.codec, file.storage_path, file.seek_index_path, file.duration_ms, streamable
    )


class Catalog:
    """playback's reads of catalog_svc, keyed by base62 track id."""

    def __init__(self, client: CatalogClient) -> None:
        self.client = client

    @classmethod
    def cached(
        cls, channel: aio.Channel, *, audio_files_ttl_s: float, include_unavailable: bool = False
    ) -> Catalog:
        """Over ``channel``, with playback's caches: tracks for minutes, unknown ids and files briefly.

        ``include_unavailable``: tracks taken down are known too (the stream counter: a play that
        happened before a takedown still counts).
        """
        return cls(
            CatalogClient(
                channel,
                track_cache=TTLCache(TRACK_CACHE_SIZE, TRACK_TTL_S, name="catalog_tracks"),
                unknown_track_ttl_s=UNKNOWN_TRACK_TTL_S,
                audio_files_cache=TTLCache(
                    AUDIO_FILES_CACHE_SIZE, audio_files_ttl_s, name="catalog_audio_files"
                ),
                include_unavailable=include_unavailable,
            )
        )

    async def tracks(self, track_ids: Iterable[str]) -> dict[str, Track]:
        """The known tracks among ``track_ids``; unknown ids are left out."""
        found = await self.client.tracks(track_ids)
        return {key: track_of(track) for key, track in found.items()}

    async def track(self, track_id: str) -> Track | None:
        return (await self.tracks([track_id])).get(track_id)

    async def audio_files(self, track_id: str) -> tuple[AudioFile, ...]:
        """The track's renditions, lowest bitrate first; NotFound when catalog does not know it."""
        return tuple(audio_file_of(f) for f in await self.client.audio_files(track_id))


class Contexts:
    """Resolves ``spotify:{album,playlist,artist}:<id>`` to track ids (base62), in play order."""

    def __init__(self, catalog: CatalogClient, library_channel: aio.Channel) -> None:
        self.catalog = catalog
        self.library = library_pb2_grpc.LibraryServiceStub(library_channel)

    async def tracks(self, uri: str) -> list[str]:
        kind, value = ids.parse_uri(uri)
        if kind not in CONTEXT_KINDS:
            raise InvalidArgument(f"context_uri must be an album, playlist or artist uri, got {uri!r}")
        context_id = ids.encode(value)
        try:
            if kind == "album":
                found = await self._album(context_id)
            elif kind == "playlist":
                found = await self._playlist(context_id)
            else:
                found = [t.id for t in await self.catalog.artist_top_tracks(context_id)]
        except NotFound as exc:
            raise NotFound(f"context {uri} not found") from exc
        except aio.AioRpcError as exc:
            raise _library_error(exc, uri) from exc
        if not found:
            raise NotFound(f"context {uri} has no tracks to play")
        return found[:MAX_QUEUE]

    async def _album(self, album_id: str) -> list[str]:
        found: list[str] = []
        while len(found) < MAX_QUEUE:
            page = await self.catalog.album_tracks(album_id, limit=_PAGE, offset=len(found))
            found += [t.id for t in page.items]
            if not page.items or len(found) >= page.total:
                break
        return found

    async def _playlist(self, playlist_id: str) -> list[str]:
        found: list[str] = []
        offset = 0
        while len(found) < MAX_QUEUE:
            page = await self.library.ListPlaylistItems(
                library_pb2.ListPlaylistItemsRequest(id=playlist_id, limit=_PAGE * 2, offset=offset)
            )
            found += [item.item.id for item in page.items if item.item.id]
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        return found


def _library_error(exc: aio.AioRpcError, uri: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"context {uri} not found")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"context {uri} is not visible to you")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(exc.details() or f"invalid context {uri}")
    return Unavailable(f"cannot read context {uri} right now ({code.name})")


class Accounts:
    """auth_svc, asked with the caller's own metadata."""

    def __init__(self, auth_channel: aio.Channel) -> None:
        self.auth = auth_pb2_grpc.AuthServiceStub(auth_channel)

    async def managed_artists(self) -> set[uuid.UUID]:
        """The artists the caller manages (auth's GetMe ``artist_ids``); a malformed id is ignored."""
        try:
            me = await self.auth.GetMe(auth_pb2.GetMeRequest())
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:  # no such account: retrying will not help
                raise Unauthenticated(exc.details() or "your account is not known") from exc
            raise Unavailable(f"cannot check which artists you manage right now ({exc.code().name})") from exc
        found = set()
        for value in me.artist_ids:
            try:
                found.add(ids.parse_id_or_uri(value, "artist"))
            except InvalidArgument:
                continue
        return found
