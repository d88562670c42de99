"""PlaybackService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED.

Player commands are retry-safe: a retry with the same ``request_id`` (or Idempotency-Key header)
gets the first answer and changes nothing again (meshkit.idempotency), so a skip retried after a
timeout skips once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as redis
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meshkit import ids
from meshkit.config import Settings
from meshkit.context import current_caller, current_idempotency_key
from meshkit.idempotency import Idempotency
from meshkit.kafka import Producer
from meshkit.metrics import PLAYBACK_EVENTS
from playback_svc.catalog import CatalogClient
from playback_svc.config import EVENTS_TOPIC, PlaybackSettings
from playback_svc.contexts import Contexts
from playback_svc.events import check_batch_size, judge
from playback_svc.history import History
from playback_svc.offline.keys import OfflineKeys
from playback_svc.offline.service import Offline
from playback_svc.player import Player
from playback_svc.player_store import PlayerStore
from playback_svc.royalties import Royalties
from playback_svc.streams import StreamUrls

R = TypeVar("R", bound=Message)


@dataclass
class Deps:
    """What the servicer's RPCs need; built once by ``server.make_setup``."""

    settings: Settings
    own: PlaybackSettings
    sessions: async_sessionmaker[AsyncSession]
    redis: redis.Redis
    catalog: CatalogClient
    contexts: Contexts
    auth_channel: aio.Channel
    producer: Producer


class PlaybackServicer(playback_pb2_grpc.PlaybackServiceServicer):
    def __init__(self, deps: Deps) -> None:
        base = deps.settings.public_base_url
        self.producer = deps.producer
        self.streams = StreamUrls(deps.catalog, base, deps.own.stream_url_ttl_s)
        self.player = Player(PlayerStore(deps.sessions), deps.catalog, deps.contexts, base)
        self.history = History(deps.sessions, deps.catalog, base)
        self.royalties = Royalties(deps.sessions, deps.auth_channel)
        self.idempotency = Idempotency(deps.redis, namespace="playback-idem")
        keys = OfflineKeys.parse(deps.own.offline_master_secret, deps.own.offline_signing_keys)
        self.offline = Offline(
            deps.sessions, deps.catalog, keys, deps.settings.storage_root, base, deps.own.stream_url_ttl_s
        )

    async def _once(
        self,
        scope: str,
        request: Message,
        request_id: str,
        response: type[R],
        write: Callable[[], Awaitable[R]],
    ) -> R:
        user = ids.encode(current_caller().require_user())
        key = current_idempotency_key(request_id)
        return await self.idempotency.run(scope, user, key, request, response, write)

    # ---- stream URLs ------------------------------------------------------------------------

    async def GetStreamUrl(
        self, request: playback_pb2.GetStreamUrlRequest, context: aio.ServicerContext
    ) -> playback_pb2.GetStreamUrlResponse:
        caller = current_caller()
        return await self.streams.get(request, caller.require_user(), caller.product)

    # ---- player -----------------------------------------------------------------------------

    async def GetPlaybackState(
        self, request: playback_pb2.GetPlaybackStateRequest, context: aio.ServicerContext
    ) -> playback_pb2.PlaybackState:
        return await self.player.state(current_caller().require_user())

    async def GetCurrentlyPlaying(
        self, request: playback_pb2.GetCurrentlyPlayingRequest, context: aio.ServicerContext
    ) -> playback_pb2.CurrentlyPlaying:
        return await self.player.currently_playing(current_caller().require_user())

    async def StartPlayback(
        self, request: playback_pb2.StartPlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.StartPlaybackResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.StartPlaybackResponse:
            await self.player.start(user, request.device_id, request.body)
            return playback_pb2.StartPlaybackResponse()

        return await self._once(
            "start", request, request.request_id, playback_pb2.StartPlaybackResponse, write
        )

    async def PausePlayback(
        self, request: playback_pb2.PausePlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.PausePlaybackResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.PausePlaybackResponse:
            await self.player.pause(user, request.device_id)
            return playback_pb2.PausePlaybackResponse()

        return await self._once(
            "pause", request, request.request_id, playback_pb2.PausePlaybackResponse, write
        )

    async def SkipToNext(
        self, request: playback_pb2.SkipToNextRequest, context: aio.ServicerContext
    ) -> playback_pb2.SkipToNextResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.SkipToNextResponse:
            await self.player.skip(user, request.device_id, forward=True)
            return playback_pb2.SkipToNextResponse()

        return await self._once("next", request, request.request_id, playback_pb2.SkipToNextResponse, write)

    async def SkipToPrevious(
        self, request: playback_pb2.SkipToPreviousRequest, context: aio.ServicerContext
    ) -> playback_pb2.SkipToPreviousResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.SkipToPreviousResponse:
            await self.player.skip(user, request.device_id, forward=False)
            return playback_pb2.SkipToPreviousResponse()

        return await self._once(
            "previous", request, request.request_id, playback_pb2.SkipToPreviousResponse, write
        )

    async def SeekToPosition(
        self, request: playback_pb2.SeekToPositionRequest, context: aio.ServicerContext
    ) -> playback_pb2.SeekToPositionResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.SeekToPositionResponse:
            await self.player.seek(user, request.position_ms, request.device_id)
            return playback_pb2.SeekToPositionResponse()

        return await self._once(
            "seek", request, request.request_id, playback_pb2.SeekToPositionResponse, write
        )

    async def SetRepeatMode(
        self, request: playback_pb2.SetRepeatModeRequest, context: aio.ServicerContext
    ) -> playback_pb2.SetRepeatModeResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.SetRepeatModeResponse:
            await self.player.repeat(user, request.state, request.device_id)
            return playback_pb2.SetRepeatModeResponse()

        return await self._once(
            "repeat", request, request.request_id, playback_pb2.SetRepeatModeResponse, write
        )

    async def SetShuffle(
        self, request: playback_pb2.SetShuffleRequest, context: aio.ServicerContext
    ) -> playback_pb2.SetShuffleResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.SetShuffleResponse:
            await self.player.shuffle(user, request.state, request.device_id)
            return playback_pb2.SetShuffleResponse()

        return await self._once(
            "shuffle", request, request.request_id, playback_pb2.SetShuffleResponse, write
        )

    async def TransferPlayback(
        self, request: playback_pb2.TransferPlaybackRequest, context: aio.ServicerContext
    ) -> playback_pb2.TransferPlaybackResponse:
        user = current_caller().require_user()

        async def write() -> playback_pb2.TransferPlaybackResponse:
            await self.player.transfer(user, list(request.device_ids), request.play)
            return playback_pb2.TransferPlaybackResponse()

        return await self._once(
            "transfer", request, request.request_id, playback_pb2.TransferPlaybackResponse, write
        )

    async def ListRecentlyPlayed(
        self, request: playback_pb2.ListRecentlyPlayedRequest, context: aio.ServicerContext
    ) -> playback_pb2.PlayHistoryCursorPage:
        return await self.history.recently_played(current_caller().require_user(), request)

    # ---- events -----------------------------------------------------------------------------

    async def ReportPlaybackEvents(
        self, request: playback_pb2.ReportPlaybackEventsRequest, context: aio.ServicerContext
    ) -> playback_pb2.ReportPlaybackEventsResponse:
        caller = current_caller()
        caller.require_user()
        check_batch_size(len(request.events))
        received_at = Timestamp()
        received_at.GetCurrentTime()
        verdicts = [judge(i, raw, caller, received_at) for i, raw in enumerate(request.events)]
        valid = [v.event for v in verdicts if v.event is not None]
        # Acknowledged only after the broker acknowledged every accepted event (acks=all).
        await self.producer.publish_many(EVENTS_TOPIC, [(event.user_id, event) for event in valid])
        for event in valid:
            name = (
                playback_pb2.PlaybackEvent.EventType.Name(event.event_type)
                .removeprefix("EVENT_TYPE_")
                .lower()
            )
            PLAYBACK_EVENTS.labels(name, event.device_type).inc()
        return playback_pb2.ReportPlaybackEventsResponse(
            accepted=len(valid),
            rejected=[
                playback_pb2.RejectedEvent(index=v.index, reason=v.reason)
                for v in verdicts
                if v.event is None
            ],
        )

    # ---- royalties --------------------------------------------------------------------------

    async def GetRoyaltyReport(
        self, request: playback_pb2.GetRoyaltyReportRequest, context: aio.ServicerContext
    ) -> playback_pb2.GetRoyaltyReportResponse:
        return await self.royalties.report(current_caller(), request)

    async def ListArtistDailyStreams(
        self, request: playback_pb2.ListArtistDailyStreamsRequest, context: aio.ServicerContext
    ) -> playback_pb2.ListArtistDailyStreamsResponse:
        return await self.royalties.artist_daily(current_caller(), request)

    # ---- offline ----------------------------------------------------------------------------

    async def RegisterOfflineDevice(
        self, request: playback_pb2.RegisterOfflineDeviceRequest, context: aio.ServicerContext
    ) -> playback_pb2.OfflineDevice:
        caller = current_caller()

        async def write() -> playback_pb2.OfflineDevice:
            return await self.offline.register(caller, request)

        return await self._once(
            "offline-device", request, request.request_id, playback_pb2.OfflineDevice, write
        )

    async def ListOfflineDevices(
        self, request: playback_pb2.ListOfflineDevicesRequest, context: aio.ServicerContext
    ) -> playback_pb2.ListOfflineDevicesResponse:
        return await self.offline.devices(current_caller())

    async def CreateOfflineDownload(
        self, request: playback_pb2.CreateOfflineDownloadRequest, context: aio.ServicerContext
    ) -> playback_pb2.CreateOfflineDownloadResponse:
        caller = current_caller()

        async def write() -> playback_pb2.CreateOfflineDownloadResponse:
            return await self.offline.download(caller, request)

        return await self._once(
            "offline-download", request, request.request_id, playback_pb2.CreateOfflineDownloadResponse, write
        )

    async def RenewOfflineLicense(
        self, request: playback_pb2.RenewOfflineLicenseRequest, context: aio.ServicerContext
    ) -> playback_pb2.OfflineLicense:
        caller = current_caller()

        async def write() -> playback_pb2.OfflineLicense:
            return await self.offline.renew(caller, request)

        return await self._once(
            "offline-renew", request, request.request_id, playback_pb2.OfflineLicense, write
        )

    async def DeleteOfflineDownload(
        self, request: playback_pb2.DeleteOfflineDownloadRequest, context: aio.ServicerContext
    ) -> playback_pb2.DeleteOfflineDownloadResponse:
        await self.offline.delete(current_caller(), request)
        return playback_pb2.DeleteOfflineDownloadResponse()
