"""Builds the Spotify Web API objects (as protobuf messages) from catalog rows.

Full and simplified objects follow Spotify's split: a track embeds a simplified album and
simplified artists; an album's track listing holds simplified tracks (no album, popularity or
external ids); search and discographies list simplified albums. The change events writes store
are built here too: their snapshot is the object a read would return.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from catalog_svc.audio_store import IngestJobRow
from catalog_svc.changes import CREATED, DELETED, UPDATED, Change
from catalog_svc.ingestion import TrackAudio
from catalog_svc.rules import ALBUM_TRACKS_LIMIT
from catalog_svc.store import AlbumRecord, AlbumRow, ArtistRef, ArtistRow, AudioFeaturesRow, TrackRecord
from catalog_svc.write_store import TakedownRow
from meshkit import ids, links, paging
from meshkit.catalog_client import TAKEDOWN

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

QUALITY_ENUM = {
    "low": catalog_pb2.AUDIO_QUALITY_LOW,
    "normal": catalog_pb2.AUDIO_QUALITY_NORMAL,
    "high": catalog_pb2.AUDIO_QUALITY_HIGH,
    "preview": catalog_pb2.AUDIO_QUALITY_PREVIEW,
}
STATUS_ENUM = {
    "queued": catalog_pb2.IngestJob.STATUS_QUEUED,
    "running": catalog_pb2.IngestJob.STATUS_RUNNING,
    "succeeded": catalog_pb2.IngestJob.STATUS_SUCCEEDED,
    "failed": catalog_pb2.IngestJob.STATUS_FAILED,
}

_EVENT = catalog_pb2.CatalogChangeEvent
_CHANGE_KINDS = {
    CREATED: _EVENT.CHANGE_KIND_CREATED,
    UPDATED: _EVENT.CHANGE_KIND_UPDATED,
    DELETED: _EVENT.CHANGE_KIND_DELETED,
}


Page = TypeVar("Page", catalog_pb2.TrackPage, catalog_pb2.AlbumPage, catalog_pb2.ArtistPage)


class ObjectBuilder:
    """Knows the public base URL, so every object's `href` points where clients reach it."""

    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def url(self, path: str) -> str:
        """An absolute public URL for an API path such as `/v1/albums/<id>/tracks`."""
        return f"{self.base}{path}"

    def _identity(self, kind: str, key: uuid.UUID) -> dict[str, Any]:
        """id, type, uri, href and external_urls: the fields every object has."""
        found = links.of(self.base, kind, ids.encode(key))
        return {
            "id": ids.encode(key),
            "type": kind,
            "uri": found.uri,
            "href": found.href,
            "external_urls": common_pb2.ExternalUrls(spotify=found.open_url),
        }

    # ---- artists ----------------------------------------------------------------------------

    def simple_artist(self, artist: ArtistRef | ArtistRow) -> catalog_pb2.Artist:
        return catalog_pb2.Artist(name=artist.name, **self._identity("artist", artist.id))

    def artist(self, artist: ArtistRow) -> catalog_pb2.Artist:
        return catalog_pb2.Artist(
            name=artist.name,
            genres=list(artist.genres or []),
            popularity=artist.popularity,
            followers=common_pb2.Followers(total=int(artist.follower_count)),
            images=_images(artist.images, artist.image_url),
            **self._identity("artist", artist.id),
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
            **self._identity("album", album.id),
        )

    def album(self, record: AlbumRecord, market: str = "") -> catalog_pb2.Album:
        """The full album object, its `tracks` the first page of simplified tracks."""
        album = record.album
        result = self.simple_album(album, record.artists, market)
        result.MergeFrom(
            catalog_pb2.Album(
                tracks=self.page(
                    catalog_pb2.TrackPage,
                    f"/v1/albums/{ids.encode(album.id)}/tracks",
                    [self.simple_track(t, market) for t in record.tracks],
                    paging.Window(offset=0, limit=ALBUM_TRACKS_LIMIT),
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
            **self._identity("track", track.id),
        )
        if record.withdrawn:  # shown only where asked for (a playlist keeps its entry)
            result.is_playable = False
            result.restrictions.reason = TAKEDOWN  # not one of Spotify's reasons: ours
            result.preview_url = ""
        elif market:
            result.is_playable = _available(record.album, market)
        return result

    def track(self, record: TrackRecord, market: str = "") -> catalog_pb2.Track:
        result = self.simple_track(record, market)
        result.album.CopyFrom(self.simple_album(record.album, record.album_artists, market))
        result.popularity = record.track.popularity
        result.external_ids.CopyFrom(common_pb2.ExternalIds(isrc=record.track.isrc or ""))
        return result

    def audio_features(self, row: AudioFeaturesRow) -> catalog_pb2.AudioFeatures:
        features = row.features
        key = ids.encode(row.track_id)
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
            uri=links.uri("track", key),
            track_href=links.href(self.base, "track", key),
            duration_ms=int(features.get("duration_ms") or row.duration_ms),
            **values,
        )

    # ---- paging objects ---------------------------------------------------------------------

    def page(
        self,
        page_type: type[Page],
        path: str,
        items: Sequence[Any],
        window: paging.Window,
        total: int,
        params: Mapping[str, str] | None = None,
    ) -> Page:
        """A Spotify paging object of `items` at `path` (its other query parameters in `params`)."""
        nav = paging.links(self.url(path), window, total, params)
        return page_type(items=items, total=total, limit=window.limit, offset=window.offset, **asdict(nav))

    # ---- audio ------------------------------------------------------------------------------

    def ingest_job(self, job: IngestJobRow) -> catalog_pb2.IngestJob:
        message = catalog_pb2.IngestJob(
            id=ids.encode(job.id),
            track_id=ids.encode(job.track_id) if job.track_id else "",
            status=STATUS_ENUM.get(job.status, catalog_pb2.IngestJob.STATUS_UNSPECIFIED),
            error=job.error or "",
            filename=job.source_filename or "",
            size_bytes=job.source_size or 0,
            created_by=ids.encode(job.requested_by) if job.requested_by else "",
        )
        for name in ("created_at", "started_at", "finished_at"):
            value = getattr(job, name)
            if value is not None:
                getattr(message, name).FromDatetime(value)
        return message

    def audio_file(self, audio: TrackAudio) -> catalog_pb2.AudioFile:
        row = audio.file
        message = catalog_pb2.AudioFile(
            id=ids.encode(row.id),
            track_id=ids.encode(row.track_id),
            quality=QUALITY_ENUM.get(row.quality, catalog_pb2.AUDIO_QUALITY_UNSPECIFIED),
            codec=row.codec,
            bitrate_kbps=row.bitrate_kbps,
            size_bytes=row.size_bytes,
            storage_path=row.storage_path,
            duration_ms=row.duration_ms,
            seek_index_path=row.seek_index_path or "",
            sample_rate_hz=row.sample_rate_hz or 0,
            channels=row.channels or 0,
            seek_points=[catalog_pb2.SeekPoint(time_ms=t, byte_offset=o) for t, o in audio.seek_points],
        )
        message.created_at.FromDatetime(row.created_at)
        return message

    # ---- change events ----------------------------------------------------------------------

    def change_event(self, change: Change) -> bytes:
        """The serialized CatalogChangeEvent of `change`, its snapshot the entity's full object."""
        occurred = Timestamp()
        occurred.GetCurrentTime()
        event = _EVENT(
            event_id=str(uuid.uuid4()),
            change_kind=_CHANGE_KINDS[change.kind],
            occurred_at=occurred,
            actor_id=ids.encode(change.actor_id),
            id=ids.encode(change.entity_id),
        )
        entity = change.entity
        if change.kind == DELETED:  # no snapshot: the entity is gone from the catalog's reads
            event.entity_type = _ENTITY_TYPES[type(entity)]
            return event.SerializeToString()
        if isinstance(entity, TrackRecord):
            event.entity_type = _EVENT.ENTITY_TYPE_TRACK
            event.track.CopyFrom(self.track(entity))
        elif isinstance(entity, AlbumRecord):
            event.entity_type = _EVENT.ENTITY_TYPE_ALBUM
            event.album.CopyFrom(self.album(entity))
        else:
            event.entity_type = _EVENT.ENTITY_TYPE_ARTIST
            event.artist.CopyFrom(self.artist(entity))
        return event.SerializeToString()

    def takedown(self, row: TakedownRow) -> catalog_pb2.Takedown:
        message = catalog_pb2.Takedown(
            uri=ids.uri(row.entity_type, row.entity_id),
            reason=row.reason,
            taken_down_by=ids.encode(row.taken_down_by),
            by_admin=row.by_admin,
        )
        message.taken_down_at.FromDatetime(row.taken_down_at)
        return message


_ENTITY_TYPES = {
    TrackRecord: _EVENT.ENTITY_TYPE_TRACK,
    AlbumRecord: _EVENT.ENTITY_TYPE_ALBUM,
    ArtistRow: _EVENT.ENTITY_TYPE_ARTIST,
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
