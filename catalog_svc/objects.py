"""Builds the Spotify Web API objects (as protobuf messages) from catalog rows.

Full and simplified objects follow Spotify's split: a track embeds a simplified album and
simplified artists; an album's track listing holds simplified tracks (no album, popularity or
external ids); search and discographies list simplified albums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from catalog_svc import paging
from catalog_svc.models import Artist
from catalog_svc.store import AlbumRecord, AlbumRow, ArtistRef, TrackRecord
from meshkit import ids

ALBUM_TRACKS_LIMIT = 50  # an album object embeds its first 50 tracks, as Spotify's does

# Audio feature keys stored in tracks.audio_features, by their type in the AudioFeatures message.
_FLOAT_FEATURES = (
    "acousticness",
    "danceability",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "speechiness",
    "tempo",
    "valence",
)
_INT_FEATURES = ("key", "mode", "time_signature")


class ObjectBuilder:
    """Knows the public base URL, so every object's `href` points where clients reach it."""

    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def url(self, path: str) -> str:
        """An absolute public URL for an API path such as `/v1/albums/<id>/tracks`."""
        return f"{self.base}{path}"

    def _links(self, kind: str, key: str) -> dict:
        return {
            "id": key,
            "type": kind,
            "uri": f"spotify:{kind}:{key}",
            "href": f"{self.base}/v1/{kind}s/{key}",
            "external_urls": common_pb2.ExternalUrls(spotify=f"{self.base}/{kind}/{key}"),
        }

    # ---- artists ----------------------------------------------------------------------------

    def simple_artist(self, artist: ArtistRef | Artist) -> catalog_pb2.Artist:
        return catalog_pb2.Artist(name=artist.name, **self._links("artist", ids.encode(artist.id)))

    def artist(self, artist: Artist) -> catalog_pb2.Artist:
        return catalog_pb2.Artist(
            name=artist.name,
            genres=list(artist.genres or []),
            popularity=artist.popularity,
            followers=common_pb2.Followers(total=int(artist.follower_count)),
            images=_images(artist.images, artist.image_url),
            **self._links("artist", ids.encode(artist.id)),
        )

    # ---- albums -----------------------------------------------------------------------------

    def simple_album(
        self, album: AlbumRow, artists: Sequence[ArtistRef], market: str = ""
    ) -> catalog_pb2.Album:
        return catalog_pb2.Album(
            name=album.title,
            album_type=album.album_type,
            total_tracks=album.total_tracks,
            available_markets=[] if market else list(album.available_markets or []),
            release_date=_release_date(album),
            release_date_precision=album.release_date_precision,
            images=_images(album.images, album.cover_url),
            artists=[self.simple_artist(a) for a in artists],
            **self._links("album", ids.encode(album.id)),
        )

    def album(self, record: AlbumRecord, market: str = "") -> catalog_pb2.Album:
        """The full album object, its `tracks` the first page of simplified tracks."""
        album = record.album
        result = self.simple_album(album, record.artists, market)
        key = ids.encode(album.id)
        result.MergeFrom(
            catalog_pb2.Album(
                tracks=self.track_page(
                    f"/v1/albums/{key}/tracks",
                    [self.simple_track(t, market) for t in record.tracks],
                    paging.Window(ALBUM_TRACKS_LIMIT, 0),
                    record.track_total,
                ),
                copyrights=[
                    common_pb2.Copyright(text=c.get("text", ""), type=c.get("type", ""))
                    for c in album.copyrights or []
                ],
                external_ids=common_pb2.ExternalIds(upc=album.upc or ""),
                genres=list(album.genres or []),
                label=album.label or "",
                popularity=album.popularity,
            )
        )
        return result

    # ---- tracks -----------------------------------------------------------------------------

    def simple_track(self, record: TrackRecord, market: str = "") -> catalog_pb2.Track:
        """A track inside an album's listing: no album, popularity or external ids."""
        track = record.track
        result = catalog_pb2.Track(
            artists=[self.simple_artist(a) for a in record.artists],
            available_markets=[] if market else list(record.album.available_markets or []),
            disc_number=track.disc_number,
            track_number=track.track_number,
            duration_ms=track.duration_ms,
            explicit=track.explicit,
            preview_url=track.preview_url or "",
            is_local=False,
            name=track.title,
            **self._links("track", ids.encode(track.id)),
        )
        if market:
            result.is_playable = _available(record.album, market)
        return result

    def track(self, record: TrackRecord, market: str = "") -> catalog_pb2.Track:
        result = self.simple_track(record, market)
        result.album.CopyFrom(self.simple_album(record.album, record.album_artists, market))
        result.popularity = record.track.popularity
        result.external_ids.CopyFrom(common_pb2.ExternalIds(isrc=record.track.isrc or ""))
        return result

    def audio_features(
        self, track_id: Any, duration_ms: int, features: dict[str, Any]
    ) -> catalog_pb2.AudioFeatures:
        key = ids.encode(track_id)
        values: dict[str, Any] = {}
        for name in _FLOAT_FEATURES:
            if isinstance(features.get(name), int | float):
                values[name] = float(features[name])
        for name in _INT_FEATURES:
            if isinstance(features.get(name), int | float):
                values[name] = int(features[name])
        values.setdefault("key", -1)
        return catalog_pb2.AudioFeatures(
            id=key,
            type="audio_features",
            uri=f"spotify:track:{key}",
            track_href=f"{self.base}/v1/tracks/{key}",
            duration_ms=int(features.get("duration_ms") or duration_ms),
            **values,
        )

    # ---- paging objects ---------------------------------------------------------------------

    def track_page(
        self,
        path: str,
        items: Sequence[catalog_pb2.Track],
        window: paging.Window,
        total: int,
        params: dict[str, str] | None = None,
    ) -> catalog_pb2.TrackPage:
        nav = paging.links(self.url(path), window, total, params)
        return catalog_pb2.TrackPage(items=items, total=total, **_page_fields(nav, window))

    def album_page(
        self,
        path: str,
        items: Sequence[catalog_pb2.Album],
        window: paging.Window,
        total: int,
        params: dict[str, str] | None = None,
    ) -> catalog_pb2.AlbumPage:
        nav = paging.links(self.url(path), window, total, params)
        return catalog_pb2.AlbumPage(items=items, total=total, **_page_fields(nav, window))

    def artist_page(
        self,
        path: str,
        items: Sequence[catalog_pb2.Artist],
        window: paging.Window,
        total: int,
        params: dict[str, str] | None = None,
    ) -> catalog_pb2.ArtistPage:
        nav = paging.links(self.url(path), window, total, params)
        return catalog_pb2.ArtistPage(items=items, total=total, **_page_fields(nav, window))


def _page_fields(nav: paging.PageLinks, window: paging.Window) -> dict[str, Any]:
    return {
        "href": nav.href,
        "next": nav.next,
        "previous": nav.previous,
        "next_page_token": nav.next_page_token,
        "limit": window.limit,
        "offset": window.offset,
    }


def _images(images: list[dict[str, Any]] | None, fallback_url: str | None) -> list[common_pb2.Image]:
    """The stored image list; rows that only have a single URL get it as one 640x640 image."""
    if images:
        return [
            common_pb2.Image(
                url=i.get("url", ""), height=int(i.get("height") or 0), width=int(i.get("width") or 0)
            )
            for i in images
        ]
    return [common_pb2.Image(url=fallback_url, height=640, width=640)] if fallback_url else []


def _available(album: AlbumRow, market: str) -> bool:
    markets = album.available_markets or []
    return not markets or market in markets


def _release_date(album: AlbumRow) -> str:
    if album.release_date is None:
        return ""
    text = album.release_date.isoformat()
    return {"year": text[:4], "month": text[:7]}.get(album.release_date_precision, text)
