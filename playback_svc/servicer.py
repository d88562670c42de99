"""PlaybackService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit.context import current_caller
from meshkit.kafka import Producer
from meshkit.metrics import PLAYBACK_EVENTS
from playback_svc.events import check_batch_size, judge

EVENTS_TOPIC = "playback.events.v1"


class PlaybackServicer(playback_pb2_grpc.PlaybackServiceServicer):
    def __init__(self, producer: Producer) -> None:
        self.producer = producer

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
