"""LibraryService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

from grpc import aio
from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc

from library_svc.clients import Neighbours
from library_svc.domain import can_view, snapshot_id
from library_svc.models import Playlist, PlaylistItem
from library_svc.store import LibraryStore
from meshkit import ids
from meshkit.context import current_caller
from meshkit.errors import NotFound

FIRST_PAGE = 100  # a playlist object embeds its first 100 items, as Spotify's does


class LibraryServicer(library_pb2_grpc.LibraryServiceServicer):
    def __init__(self, store: LibraryStore, neighbours: Neighbours, public_base_url: str) -> None:
        self.store = store
        self.neighbours = neighbours
        self.base = public_base_url.rstrip("/")

    async def GetPlaylist(
        self, request: library_pb2.GetPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        found = await self.store.playlist(playlist_id)
        if found is None or not can_view(found[0], found[1], current_caller()):
            raise NotFound(f"playlist {request.id} not found")
        playlist, collaborators = found
        items = await self.store.items(playlist_id, 0, FIRST_PAGE)
        tracks = await self.neighbours.tracks(item.track_id for item in items)
        owner = await self.neighbours.user(playlist.owner_id)
        key = ids.encode(playlist.id)
        return library_pb2.Playlist(
            id=key,
            name=playlist.name,
            description=playlist.description or "",
            public=playlist.is_public,
            collaborative=playlist.is_collaborative,
            owner=owner,
            followers=common_pb2.Followers(total=playlist.follower_count),
            snapshot_id=snapshot_id(playlist),
            type="playlist",
            uri=f"spotify:playlist:{key}",
            href=f"{self.base}/v1/playlists/{key}",
            external_urls=common_pb2.ExternalUrls(spotify=f"{self.base}/playlist/{key}"),
            collaborator_ids=[ids.encode(c) for c in collaborators],
            items=self._item_page(playlist, items, tracks, owner),
        )

    def _item_page(
        self,
        playlist: Playlist,
        items: list[PlaylistItem],
        tracks: dict[str, catalog_pb2.Track],
        owner: common_pb2.PublicUser,
    ) -> library_pb2.PlaylistItemPage:
        key = ids.encode(playlist.id)
        href = f"{self.base}/v1/playlists/{key}/items"
        total = playlist.item_count
        next_url = f"{href}?offset={FIRST_PAGE}&limit={FIRST_PAGE}" if total > FIRST_PAGE else ""
        return library_pb2.PlaylistItemPage(
            href=f"{href}?offset=0&limit={FIRST_PAGE}",
            limit=FIRST_PAGE,
            offset=0,
            total=total,
            next=next_url,
            items=[
                library_pb2.PlaylistItem(
                    added_at=item.added_at.isoformat().replace("+00:00", "Z"),
                    added_by=_added_by(item, owner),
                    item=tracks[ids.encode(item.track_id)],
                )
                for item in items
                if ids.encode(item.track_id) in tracks
            ],
        )


def _added_by(item: PlaylistItem, owner: common_pb2.PublicUser) -> common_pb2.PublicUser:
    if item.added_by is None:
        return common_pb2.PublicUser()
    key = ids.encode(item.added_by)
    if key == owner.id:
        return owner
    return common_pb2.PublicUser(id=key, type="user", uri=f"spotify:user:{key}")
