"""What a context URI plays: the tracks of an album (catalog), a playlist (library) or an
artist's top tracks (catalog), in order, for the player's queue.

The owning service answers over gRPC with the caller's metadata (a private playlist stays
private to those who may see it); queues are capped so one request cannot pull a huge playlist.
"""

from __future__ import annotations

import grpc
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.library.v1 import library_pb2, library_pb2_grpc

from meshkit import ids
from meshkit.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

MAX_QUEUE = 500
CONTEXT_KINDS = ("album", "playlist", "artist")
_PAGE = 50


def _mapped(exc: aio.AioRpcError, uri: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"context {uri} not found")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"context {uri} is not visible to you")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(exc.details() or f"invalid context {uri}")
    return Unavailable(f"cannot read context {uri} right now ({code.name})")


class Contexts:
    """Resolves ``spotify:{album,playlist,artist}:<id>`` to track ids (base62), in play order."""

    def __init__(self, catalog_channel: aio.Channel, library_channel: aio.Channel) -> None:
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(catalog_channel)
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
                reply = await self.catalog.ListArtistTopTracks(
                    catalog_pb2.ListArtistTopTracksRequest(id=context_id)
                )
                found = [t.id for t in reply.tracks]
        except aio.AioRpcError as exc:
            raise _mapped(exc, uri) from exc
        if not found:
            raise NotFound(f"context {uri} has no tracks to play")
        return found[:MAX_QUEUE]

    async def _album(self, album_id: str) -> list[str]:
        found: list[str] = []
        while len(found) < MAX_QUEUE:
            page = await self.catalog.ListAlbumTracks(
                catalog_pb2.ListAlbumTracksRequest(id=album_id, limit=_PAGE, offset=len(found))
            )
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
