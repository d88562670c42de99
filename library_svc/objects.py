"""Builds Spotify's playlist, playlist item and saved-item objects from rows and neighbours' objects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2

from library_svc.domain import snapshot_id
from library_svc.models import Playlist, PlaylistItem, SavedItem
from library_svc.paging import Window, links
from meshkit import ids


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as Spotify writes `added_at`."""
    if value.utcoffset():  # PostgreSQL hands timestamptz back in UTC already: skip the conversion
        value = value.astimezone(UTC)
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value:%H:%M:%S}Z"


class LibraryObjects:
    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def playlist(
        self,
        playlist: Playlist,
        owner: common_pb2.PublicUser,
        collaborators: Sequence[uuid.UUID],
        items: library_pb2.PlaylistItemPage,
    ) -> library_pb2.Playlist:
        """The full playlist object (GET /v1/playlists/{id}): followers and the first page of items."""
        full = self.simplified(playlist, owner)
        full.followers.CopyFrom(common_pb2.Followers(total=playlist.follower_count))
        full.items.CopyFrom(items)
        full.collaborator_ids.extend(ids.encode(c) for c in collaborators)
        return full

    def simplified(self, playlist: Playlist, owner: common_pb2.PublicUser) -> library_pb2.Playlist:
        """The simplified playlist object of lists: items carry only href and total."""
        key = ids.encode(playlist.id)
        return library_pb2.Playlist(
            id=key,
            name=playlist.name,
            description=playlist.description or "",
            public=playlist.is_public,
            collaborative=playlist.is_collaborative,
            owner=owner,
            snapshot_id=snapshot_id(playlist),
            type="playlist",
            uri=f"spotify:playlist:{key}",
            href=f"{self.base}/v1/playlists/{key}",
            external_urls=common_pb2.ExternalUrls(spotify=f"{self.base}/playlist/{key}"),
            items=library_pb2.PlaylistItemPage(
                href=f"{self.base}/v1/playlists/{key}/items", total=playlist.item_count
            ),
        )

    def item_page(
        self,
        playlist: Playlist,
        page: Window,
        items: Sequence[PlaylistItem],
        tracks: dict[str, catalog_pb2.Track],
        users: dict[uuid.UUID, common_pb2.PublicUser],
    ) -> library_pb2.PlaylistItemPage:
        """A page of playlist items. A track the catalog no longer has keeps its place without `item`
        (Spotify sends `"track": null`), so offsets and totals stay right."""
        where = links(f"{self.base}/v1/playlists/{ids.encode(playlist.id)}/items", page, playlist.item_count)
        return library_pb2.PlaylistItemPage(
            href=where.href,
            next=where.next,
            previous=where.previous,
            next_page_token=where.next_page_token,
            limit=page.limit,
            offset=page.offset,
            total=playlist.item_count,
            items=[
                library_pb2.PlaylistItem(
                    added_at=timestamp(item.added_at),
                    added_by=users.get(item.added_by) if item.added_by else None,
                    is_local=False,
                    item=tracks.get(ids.encode(item.track_id)),
                )
                for item in items
            ],
        )

    def playlist_page(
        self, base: str, page: Window, total: int, playlists: Sequence[library_pb2.Playlist]
    ) -> library_pb2.PlaylistPage:
        where = links(f"{self.base}{base}", page, total)
        return library_pb2.PlaylistPage(
            href=where.href,
            next=where.next,
            previous=where.previous,
            next_page_token=where.next_page_token,
            limit=page.limit,
            offset=page.offset,
            total=total,
            items=playlists,
        )

    def saved_track_page(
        self, page: Window, total: int, saved: Sequence[SavedItem], tracks: dict[str, catalog_pb2.Track]
    ) -> library_pb2.SavedTrackPage:
        where = links(f"{self.base}/v1/me/tracks", page, total)
        return library_pb2.SavedTrackPage(
            href=where.href,
            next=where.next,
            previous=where.previous,
            next_page_token=where.next_page_token,
            limit=page.limit,
            offset=page.offset,
            total=total,
            items=[
                library_pb2.SavedTrack(
                    added_at=timestamp(s.saved_at), track=tracks.get(ids.encode(s.item_id))
                )
                for s in saved
            ],
        )

    def saved_album_page(
        self, page: Window, total: int, saved: Sequence[SavedItem], albums: dict[str, catalog_pb2.Album]
    ) -> library_pb2.SavedAlbumPage:
        where = links(f"{self.base}/v1/me/albums", page, total)
        return library_pb2.SavedAlbumPage(
            href=where.href,
            next=where.next,
            previous=where.previous,
            next_page_token=where.next_page_token,
            limit=page.limit,
            offset=page.offset,
            total=total,
            items=[
                library_pb2.SavedAlbum(
                    added_at=timestamp(s.saved_at), album=albums.get(ids.encode(s.item_id))
                )
                for s in saved
            ],
        )

    def followed_artists(
        self,
        limit: int,
        after: str,
        total: int,
        page_ids: Sequence[uuid.UUID],
        artists: dict[str, catalog_pb2.Artist],
        more: bool,
    ) -> library_pb2.ListFollowedArtistsResponse:
        """Spotify's cursor page, wrapped as {"artists": {...}}; `more` says whether a next page exists."""
        href = f"{self.base}/v1/me/following?type=artist&limit={limit}"
        last = ids.encode(page_ids[-1]) if page_ids else ""
        return library_pb2.ListFollowedArtistsResponse(
            artists=library_pb2.ArtistCursorPage(
                href=f"{href}&after={after}" if after else href,
                items=[artists[k] for k in (ids.encode(a) for a in page_ids) if k in artists],
                limit=limit,
                next=f"{href}&after={last}" if more else "",
                cursors=common_pb2.Cursors(after=last if more else ""),
                total=total,
                next_page_token=last if more else "",
            )
        )
