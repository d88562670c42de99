"""playback's protobuf answers, built from its domain values (tracks come from catalog already shaped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.common.v1 import common_pb2
from spotify.playback.v1 import playback_pb2

from meshkit import ids, links
from meshkit.errors import InvalidArgument
from playback_svc.events import Reported
from playback_svc.history import HistoryPage, cursor_token
from playback_svc.offline import MAX_DEVICES, Device, Download
from playback_svc.offline_licenses import License, license_message
from playback_svc.player import PlaybackView
from playback_svc.royalties import ArtistDaily, RoyaltyReport
from playback_svc.streams import StreamUrl


def millis(moment: datetime) -> int:
    """Unix time in milliseconds, as Spotify's timestamps and cursors are."""
    return int(moment.timestamp() * 1000)


def rfc3339(moment: datetime) -> str:
    """``2016-12-13T20:44:04.589Z``: UTC with milliseconds, the shape of Spotify's played_at."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def context_object(base: str, uri: str) -> playback_pb2.PlaybackContext | None:
    """The context object of ``spotify:<kind>:<id>``; None for anything else (a client's context_uri
    in an old playback event is not validated, and must not break a history page)."""
    try:
        kind, value = ids.parse_uri(uri)
    except InvalidArgument:
        return None
    key = ids.encode(value)
    return playback_pb2.PlaybackContext(
        type=kind,
        uri=uri,
        href=links.href(base, kind, key),
        external_urls=common_pb2.ExternalUrls(spotify=links.open_url(base, kind, key)),
    )


# ---- player ---------------------------------------------------------------------------------


def playback_state(base: str, view: PlaybackView | None) -> playback_pb2.PlaybackState:
    """Nothing active is an empty object (Spotify's 204, through the transcoder)."""
    if view is None:
        return playback_pb2.PlaybackState()
    reply = playback_pb2.PlaybackState(
        repeat_state=view.repeat_state,
        shuffle_state=view.shuffle,
        timestamp=float(millis(view.updated_at)),
        progress_ms=view.progress_ms,
        is_playing=view.is_playing,
        currently_playing_type="track" if view.track is not None else "unknown",
    )
    if view.device is not None:
        reply.device.CopyFrom(
            playback_pb2.Device(
                id=view.device.id,
                is_active=True,
                name=view.device.name,
                type=view.device.type,
                volume_percent=view.device.volume_percent or 0,
                supports_volume=view.device.volume_percent is not None,
            )
        )
    context = context_object(base, view.context_uri) if view.context_uri else None
    if context is not None:
        reply.context.CopyFrom(context)
    if view.track is not None:
        reply.item.CopyFrom(view.track)
    return reply


def currently_playing(base: str, view: PlaybackView | None) -> playback_pb2.CurrentlyPlaying:
    full = playback_state(base, view)
    reply = playback_pb2.CurrentlyPlaying(
        timestamp=full.timestamp,
        progress_ms=full.progress_ms,
        is_playing=full.is_playing,
        currently_playing_type=full.currently_playing_type,
    )
    if full.HasField("context"):
        reply.context.CopyFrom(full.context)
    if full.HasField("item"):
        reply.item.CopyFrom(full.item)
    return reply


def _history_href(base: str, limit: int, *, after: int = 0, before: int = 0) -> str:
    params: dict[str, int] = {"limit": limit}
    if after:
        params["after"] = after
    if before:
        params["before"] = before
    return f"{base}/v1/me/player/recently-played?{urlencode(params)}"


def history_page(base: str, page: HistoryPage) -> playback_pb2.PlayHistoryCursorPage:
    """Spotify's cursor page: ``next`` follows the direction walked, ``next_page_token`` only goes back."""
    reply = playback_pb2.PlayHistoryCursorPage(
        href=_history_href(base, page.limit, after=page.after_ms, before=page.before_ms),
        limit=page.limit,
        total=page.total,
    )
    for play in page.plays:
        item = reply.items.add(played_at=rfc3339(play.played_at))
        if play.track is not None:
            item.track.CopyFrom(play.track)
        context = context_object(base, play.context_uri) if play.context_uri else None
        if context is not None:
            item.context.CopyFrom(context)
    if page.plays:
        newest, oldest = page.plays[0], page.plays[-1]
        reply.cursors.CopyFrom(
            common_pb2.Cursors(after=str(millis(newest.played_at)), before=str(millis(oldest.played_at)))
        )
        if page.more and not page.forward:
            reply.next = _history_href(base, page.limit, before=millis(oldest.played_at))
            reply.next_page_token = cursor_token(oldest.played_at, oldest.row_id)
        elif page.more:
            reply.next = _history_href(base, page.limit, after=millis(newest.played_at))
    return reply


# ---- streams and events ---------------------------------------------------------------------


def stream_url(stream: StreamUrl) -> playback_pb2.GetStreamUrlResponse:
    return playback_pb2.GetStreamUrlResponse(
        url=stream.url,
        quality_kbps=stream.quality_kbps,
        codec=stream.codec,
        expires_at=Timestamp(seconds=stream.expires_at),
        seek_index_url=stream.seek_index_url,
        alternatives=[
            playback_pb2.StreamAlternative(
                quality_kbps=alt.quality_kbps, url=alt.url, seek_index_url=alt.seek_index_url
            )
            for alt in stream.alternatives
        ],
        track_id=stream.track_id,
        duration_ms=stream.duration_ms,
    )


def events_reported(reported: Reported) -> playback_pb2.ReportPlaybackEventsResponse:
    return playback_pb2.ReportPlaybackEventsResponse(
        accepted=reported.accepted,
        rejected=[playback_pb2.RejectedEvent(index=v.index, reason=v.reason) for v in reported.rejected],
    )


# ---- royalties ------------------------------------------------------------------------------


def royalty_report(report: RoyaltyReport) -> playback_pb2.GetRoyaltyReportResponse:
    return playback_pb2.GetRoyaltyReportResponse(
        period_start=report.first.isoformat(),
        period_end=report.last.isoformat(),
        total_streams=report.total_streams,
        rows=[
            playback_pb2.RoyaltyRow(
                artist_id=ids.encode(row.artist_id), streams=row.streams, share=report.share(row)
            )
            for row in report.rows
        ],
    )


def artist_daily_streams(daily: ArtistDaily) -> playback_pb2.ListArtistDailyStreamsResponse:
    return playback_pb2.ListArtistDailyStreamsResponse(
        artist_id=ids.encode(daily.artist_id),
        rows=[
            playback_pb2.DailyStreamRow(
                date=row.day.isoformat(), track_id=ids.encode(row.track_id), streams=row.streams
            )
            for row in daily.rows
        ],
    )


# ---- offline --------------------------------------------------------------------------------


def offline_device(device: Device) -> playback_pb2.OfflineDevice:
    reply = playback_pb2.OfflineDevice(
        device_id=device.device_id,
        name=device.name,
        device_type=device.device_type,
        public_key=device.public_key,
        registered_at=timestamp(device.registered_at),
        download_count=device.download_count,
    )
    if device.last_seen_at is not None:
        reply.last_seen_at.CopyFrom(timestamp(device.last_seen_at))
    return reply


def offline_signing_keys(keys: Mapping[str, bytes]) -> playback_pb2.ListOfflineSigningKeysResponse:
    """`keys` in their order: the signing key first."""
    return playback_pb2.ListOfflineSigningKeysResponse(
        keys=[playback_pb2.OfflineSigningKey(key_id=kid, public_key=raw) for kid, raw in keys.items()]
    )


def offline_devices(devices: Sequence[Device]) -> playback_pb2.ListOfflineDevicesResponse:
    return playback_pb2.ListOfflineDevicesResponse(
        devices=[offline_device(d) for d in devices], max_devices=MAX_DEVICES
    )


def offline_license(license: License) -> playback_pb2.OfflineLicense:
    return license_message(license)


def offline_download(download: Download) -> playback_pb2.CreateOfflineDownloadResponse:
    return playback_pb2.CreateOfflineDownloadResponse(
        download_url=download.url,
        license=license_message(download.license),
        size_bytes=download.size_bytes,
        quality_kbps=download.quality_kbps,
        codec=download.codec,
    )
