"""PlaybackService: protobuf in, one domain call, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED.

Writes take their retry key from the request's ``request_id`` or the Idempotency-Key header; the
domain modules own what a retry gets.
"""

from __future__ import annotations

import dataclasses
import uuid

from grpc import aio
from spotify.common.v1 import common_pb2
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit import user_export
from meshkit.context import current_caller, current_idempotency_key
from playback_svc import objects
from playback_svc.events import PlaybackEvents, ReportedEvent
from playback_svc.history import History
from playback_svc.offline import Offline
from playback_svc.player import Offset, Player, Start
from playback_svc.royalties import Royalties
from playback_svc.streams import StreamUrls


def _writer(request_id: str) -> tuple[uuid.UUID, str]:
    """The user a write is for, and its retry key: the request's ``request_id``, else the header."""
    return current_caller().require_user(), current_idempotency_key(request_id)


def _start(request: playback_pb2.StartPlaybackRequest) -> Start:
    body = request.body
    offset = Offset(
        position=body.offset.position if body.offset.HasField("position") else None, uri=body.offset.uri
    )
    return Start(request.device_id, body.context_uri, tuple(body.uris), offset, body.position_ms)


def _reported(raw: playback_pb2.ClientPlaybackEvent) -> ReportedEvent:
    """The client's event as it sent it: the fields are the message's, by name."""
    return ReportedEvent(
        **{field.name: getattr(raw, field.name) for field in dataclasses.fields(ReportedEvent)}
    )


class PlaybackServicer(playback_pb2_grpc.PlaybackServiceServicer):
    def __init__(
        self,
        streams: StreamUrls,
        player: Player,
        history: History,
        events: PlaybackEvents,
        royalties: Royalties,
        offline: Offline,
        public_base_url: str,
        export: user_export.Exporter,
    ) -> None:
        self.streams, self.player, self.history = streams, player, history
        self.events, self.royalties, self.offline = events, royalties, offline
        self.base = public_base_url.rstrip("/")
        self.export = export

    # ---- data export ----------------------------------------------------------------------------

    async def ExportUserData(
        self, request: common_pb2.ExportUserDataRequest, context: aio.ServicerContext
    ) -> common_pb2.ExportUserDataResponse:
        return await user_export.answer(request, self.export)

    # ---- stream URLs ------------------------------------------------------------------------

    async def GetStreamUrl(
        self, request: playback_pb2.GetStreamUrlRequest, context: aio.ServicerContext
    ) -> playback_pb2.GetStreamUrlResponse:
        caller = current_caller()
        stream = await self.streams.get(
            caller.require_user(),
            caller.product,
            request.track_id,
            request.quality,
            request.connection,
            request.bandwidth_kbps,
        )
        return objects.stream_url(stream)

    # ---- player -----------------------------------------------------------------------------

    async def GetPlaybackState(
        self, request: playback_pb2.GetPlaybackStateRequest, context: aio.ServicerContext
    ) -> playback_pb2.PlaybackState:
        view = await self.player.state(current_caller().require_user())
        return objects.playback_state(self.base, view)

    async def GetCurrentlyPlaying(
        self, request: playback_pb2.GetCurrentlyPlayingRequest, context: aio.ServicerContext
    ) -> playback_pb2.CurrentlyPlaying:
        view = await self.player.state(current_caller().require_user())
        return objects.currently_playing(self.base, view)

    async def StartPlayback(
        self, request: playback_pb2.StartPlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.StartPlaybackResponse:
        user, key = _writer(request.request_id)
        await self.player.start(user, key, _start(request))
        return playback_pb2.StartPlaybackResponse()

    async def PausePlayback(
        self, request: playback_pb2.PausePlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.PausePlaybackResponse:
        user, key = _writer(request.request_id)
        await self.player.pause(user, key, request.device_id)
        return playback_pb2.PausePlaybackResponse()

    async def SkipToNext(
        self, request: playback_pb2.SkipToNextRequest, context: aio.ServicerContext
    ) -> playback_pb2.SkipToNextResponse:
        user, key = _writer(request.request_id)
        await self.player.skip(user, key, request.device_id, forward=True)
        return playback_pb2.SkipToNextResponse()

    async def SkipToPrevious(
        self, request: playback_pb2.SkipToPreviousRequest, context: aio.ServicerContext
    ) -> playback_pb2.SkipToPreviousResponse:
        user, key = _writer(request.request_id)
        await self.player.skip(user, key, request.device_id, forward=False)
        return playback_pb2.SkipToPreviousResponse()

    async def SeekToPosition(
        self, request: playback_pb2.SeekToPositionRequest, context: aio.ServicerContext
    ) -> playback_pb2.SeekToPositionResponse:
        user, key = _writer(request.request_id)
        await self.player.seek(user, key, request.position_ms, request.device_id)
        return playback_pb2.SeekToPositionResponse()

    async def SetRepeatMode(
        self, request: playback_pb2.SetRepeatModeRequest, context: aio.ServicerContext
    ) -> playback_pb2.SetRepeatModeResponse:
        user, key = _writer(request.request_id)
        await self.player.repeat(user, key, request.state, request.device_id)
        return playback_pb2.SetRepeatModeResponse()

    async def SetShuffle(
        self, request: playback_pb2.SetShuffleRequest, context: aio.ServicerContext
    ) -> playback_pb2.SetShuffleResponse:
        user, key = _writer(request.request_id)
        await self.player.shuffle(user, key, request.state, request.device_id)
        return playback_pb2.SetShuffleResponse()

    async def TransferPlayback(
        self, request: playback_pb2.TransferPlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.TransferPlaybackResponse:
        user, key = _writer(request.request_id)
        await self.player.transfer(user, key, list(request.device_ids), request.play)
        return playback_pb2.TransferPlaybackResponse()

    async def ListRecentlyPlayed(
        self, request: playback_pb2.ListRecentlyPlayedRequest, context: aio.ServicerContext
    ) -> playback_pb2.PlayHistoryCursorPage:
        page = await self.history.recently_played(
            current_caller().require_user(),
            limit=request.limit or request.page_size,
            after_ms=request.after,
            before_ms=request.before,
            page_token=request.page_token,
        )
        return objects.history_page(self.base, page)

    # ---- events -----------------------------------------------------------------------------

    async def ReportPlaybackEvents(
        self, request: playback_pb2.ReportPlaybackEventsRequest, context: aio.ServicerContext
    ) -> playback_pb2.ReportPlaybackEventsResponse:
        reported = await self.events.report(current_caller(), [_reported(raw) for raw in request.events])
        return objects.events_reported(reported)

    # ---- royalties --------------------------------------------------------------------------

    async def GetRoyaltyReport(
        self, request: playback_pb2.GetRoyaltyReportRequest, context: aio.ServicerContext
    ) -> playback_pb2.GetRoyaltyReportResponse:
        report = await self.royalties.report(current_caller(), request.period_start, request.period_end)
        return objects.royalty_report(report)

    async def ListArtistDailyStreams(
        self, request: playback_pb2.ListArtistDailyStreamsRequest, context: aio.ServicerContext
    ) -> playback_pb2.ListArtistDailyStreamsResponse:
        daily = await self.royalties.artist_daily(
            current_caller(), request.artist_id, request.start, request.end
        )
        return objects.artist_daily_streams(daily)

    # ---- offline ----------------------------------------------------------------------------

    async def RegisterOfflineDevice(
        self, request: playback_pb2.RegisterOfflineDeviceRequest, context: aio.ServicerContext
    ) -> playback_pb2.OfflineDevice:
        device = await self.offline.register(
            current_caller(),
            current_idempotency_key(request.request_id),
            request.device_id,
            request.name,
            request.device_type,
            bytes(request.public_key),
        )
        return objects.offline_device(device)

    async def ListOfflineDevices(
        self, request: playback_pb2.ListOfflineDevicesRequest, context: aio.ServicerContext
    ) -> playback_pb2.ListOfflineDevicesResponse:
        return objects.offline_devices(await self.offline.devices(current_caller()))

    async def ListOfflineSigningKeys(
        self, request: playback_pb2.ListOfflineSigningKeysRequest, context: aio.ServicerContext
    ) -> playback_pb2.ListOfflineSigningKeysResponse:
        return objects.offline_signing_keys(self.offline.keys.public_keys())

    async def CreateOfflineDownload(
        self, request: playback_pb2.CreateOfflineDownloadRequest, context: aio.ServicerContext
    ) -> playback_pb2.CreateOfflineDownloadResponse:
        download = await self.offline.download(
            current_caller(),
            current_idempotency_key(request.request_id),
            request.device_id,
            request.track_id,
            request.quality,
        )
        return objects.offline_download(download)

    async def RenewOfflineLicense(
        self, request: playback_pb2.RenewOfflineLicenseRequest, context: aio.ServicerContext
    ) -> playback_pb2.OfflineLicense:
        license = await self.offline.renew(
            current_caller(),
            current_idempotency_key(request.request_id),
            request.license_id,
            request.device_id,
        )
        return objects.offline_license(license)

    async def DeleteOfflineDownload(
        self, request: playback_pb2.DeleteOfflineDownloadRequest, context: aio.ServicerContext
    ) -> playback_pb2.DeleteOfflineDownloadResponse:
        await self.offline.delete(current_caller(), request.license_id)
        return playback_pb2.DeleteOfflineDownloadResponse()
