"""Builds the Spotify Web API objects (as protobuf messages) from catalog rows."""

from __future__ import annotations

from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from catalog_svc.models import Album, Artist
from catalog_svc.store import TrackRecord
from meshkit import ids


class ObjectBuilder:
    """Knows the public base URL, so every object's `href` points where clients reach it."""

    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def _links(self, kind: str, key: str) -> dict:
        return {
            "id": key,
            "type": kind,
            "uri": f"spotify:{kind}:{key}",
            "href": f"{self.base}/v1/{kind}s/{key}",
            "external_urls": common_pb2.ExternalUrls(spotify=f"{self.base}/{kind}/{key}"),
        }

    def simple_artist(self, artist: Artist) -> catalog_pb2.Artist:
        return catalog_pb2.Artist(name=artist.name, **self._links("artist", ids.encode(artist.id)))

    def artist(self, artist: Artist) -> catalog_pb2.Artist:
        key = ids.encode(artist.id)
        images = [common_pb2.Image(url=artist.image_url, height=640, width=640)] if artist.image_url else []
        return catalog_pb2.Artist(
            name=artist.name,
            genres=list(artist.genres or []),
            popularity=artist.popularity,
            followers=common_pb2.Followers(total=int(artist.follower_count)),
            images=images,
            **self._links("artist", key),
        )

    def simple_album(self, album: Album, artists: list[Artist]) -> catalog_pb2.Album:
        images = [common_pb2.Image(url=album.cover_url, height=640, width=640)] if album.cover_url else []
        return catalog_pb2.Album(
            name=album.title,
            album_type=album.album_type,
            total_tracks=album.total_tracks,
            release_date=_release_date(album),
            release_date_precision=album.release_date_precision,
            images=images,
            artists=[self.simple_artist(a) for a in artists],
            **self._links("album", ids.encode(album.id)),
        )

    def track(self, record: TrackRecord) -> catalog_pb2.Track:
        track = record.track
        return catalog_pb2.Track(
            name=track.title,
            album=self.simple_album(record.album, record.album_artists),
            artists=[self.simple_artist(a) for a in record.artists],
            disc_number=track.disc_number,
            track_number=track.track_number,
            duration_ms=track.duration_ms,
            explicit=track.explicit,
            popularity=track.popularity,
            preview_url=track.preview_url or "",
            external_ids=common_pb2.ExternalIds(isrc=track.isrc or ""),
            **self._links("track", ids.encode(track.id)),
        )


def _release_date(album: Album) -> str:
    if album.release_date is None:
        return ""
    text = album.release_date.isoformat()
    return {"year": text[:4], "month": text[:7]}.get(album.release_date_precision, text)
