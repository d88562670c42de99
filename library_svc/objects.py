"""Builds Spotify's playlist, playlist item and saved-item objects from the domain's answers.

Spotify renamed a playlist's `tracks` to `items` and each entry's `track` to `item`, and still sends
the old name beside the new one, the same object under both: so do these builders, and clients
written against either shape keep working. Saved tracks and albums have no such pair in Spotify's
reference and keep their one name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2

from library_svc.playlists import ItemPage, PlaylistDetails, PlaylistList
from library_svc.rules import snapshot_id
from library_svc.saved import FollowedArtists, SavedPage
from library_svc.store import PlaylistRow
from meshkit import ids, links, paging

T = TypeVar("T")


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as Spotify writes `added_at`."""
    if value.utcoffset():  # PostgreSQL hands timestamptz back in UTC already: skip the conversion
        value = value.astimezone(UTC)
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value:%H:%M:%S}Z"


class LibraryObjects:
    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def playlist(self, details: PlaylistDetails) -> library_pb2.Playlist:
        """The full playlist object (GET /v1/playlists/{id}): followers and the first page of items."""
        full = self.simplified(details.playlist, details.owner)
        full.followers.CopyFrom(common_pb2.Followers(total=details.playlist.follower_count))
        page = self.item_page(details.items)
        full.items.CopyFrom(page)
        full.tracks.CopyFrom(page)
        full.collaborator_ids.extend(ids.encode(c) for c in details.collaborators)
        return full

    def simplified(self, playlist: PlaylistRow, owner: common_pb2.PublicUser) -> library_pb2.Playlist:
        """The simplified playlist object of lists: items carry only href and total."""
        key = ids.encode(playlist.id)
        where = links.of(self.base, "playlist", key)
        items = library_pb2.PlaylistItemPage(href=f"{where.href}/items", total=playlist.item_count)
        return library_pb2.Playlist(
            id=key,
            name=playlist.name,
            description=playlist.description or "",
            public=playlist.is_public,
            collaborative=playlist.is_collaborative,
            owner=owner,
            snapshot_id=snapshot_id(playlist),
            type="playlist",
            uri=where.uri,
            href=where.href,
            external_urls=common_pb2.ExternalUrls(spotify=where.open_url),
            items=items,
            tracks=items,
        )

    def item_page(self, page: ItemPage) -> library_pb2.PlaylistItemPage:
        """A page of playlist items, each track under `item` and the deprecated `track`. A track the
        catalog no longer has keeps its place without either (Spotify sends null), so offsets and
        totals stay right."""
        path = f"/v1/playlists/{ids.encode(page.playlist.id)}/items"
        items = []
        for entry in page.items:
            track = page.tracks.get(ids.encode(entry.track_id))
            items.append(
                library_pb2.PlaylistItem(
                    added_at=timestamp(entry.added_at),
                    added_by=page.adders.get(entry.added_by) if entry.added_by else None,
                    is_local=False,
                    item=track,
                    track=track,
                )
            )
        return library_pb2.PlaylistItemPage(
            **self._paging(path, page.window, page.playlist.item_count), items=items
        )

    def playlist_page(self, path: str, listed: PlaylistList) -> library_pb2.PlaylistPage:
        return library_pb2.PlaylistPage(
            **self._paging(path, listed.window, listed.total),
            items=[self.simplified(p, listed.owners[p.owner_id]) for p in listed.playlists],
        )

    def saved_track_page(self, page: SavedPage[catalog_pb2.Track]) -> library_pb2.SavedTrackPage:
        items = [library_pb2.SavedTrack(added_at=at, track=track) for at, track in _saved(page)]
        return library_pb2.SavedTrackPage(
            **self._paging("/v1/me/tracks", page.window, page.total), items=items
        )

    def saved_album_page(self, page: SavedPage[catalog_pb2.Album]) -> library_pb2.SavedAlbumPage:
        items = [library_pb2.SavedAlbum(added_at=at, album=album) for at, album in _saved(page)]
        return library_pb2.SavedAlbumPage(
            **self._paging("/v1/me/albums", page.window, page.total), items=items
        )

    def followed_artists(
        self, limit: int, after: str, found: FollowedArtists
    ) -> library_pb2.ListFollowedArtistsResponse:
        """Spotify's cursor page, wrapped as {"artists": {...}}; `after` is the cursor it was asked with."""
        href = f"{self.base}/v1/me/following?type=artist&limit={limit}"
        last = ids.encode(found.artist_ids[-1]) if found.artist_ids else ""
        following = last if found.more else ""
        return library_pb2.ListFollowedArtistsResponse(
            artists=library_pb2.ArtistCursorPage(
                href=f"{href}&after={after}" if after else href,
                items=[found.artists[k] for k in map(ids.encode, found.artist_ids) if k in found.artists],
                limit=limit,
                next=f"{href}&after={last}" if found.more else "",
                cursors=common_pb2.Cursors(after=following),
                total=found.total,
                next_page_token=following,
            )
        )

    def _paging(self, path: str, window: paging.Window, total: int) -> dict[str, Any]:
        return paging.page_fields(f"{self.base}{path}", window, total)


def _saved(page: SavedPage[T]) -> list[tuple[str, T | None]]:
    """Each saved item's `added_at` and the catalog's object (None once the catalog lost it)."""
    return [(timestamp(s.saved_at), page.objects.get(ids.encode(s.item_id))) for s in page.saved]
