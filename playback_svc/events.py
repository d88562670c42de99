"""ReportPlaybackEvents: client playback events validated, then published to ``playback.events.v1``.

Each event is judged on its own: a bad one is rejected with a reason and the rest of the
batch still goes through, so a client can drop or fix exactly the events that failed. The
published event is the stream counter's input (and rec's): what it trusts (user, product,
country, receive time) comes from the server, never from the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2

from meshkit import ids, topics
from meshkit.context import Caller
from meshkit.errors import InvalidArgument
from meshkit.idempotency import check_key
from meshkit.kafka import Producer
from meshkit.metrics import PLAYBACK_EVENTS, device_type_label

log = logging.getLogger(__name__)

EVENT_TYPES = {
    "start": playback_pb2.PlaybackEvent.EVENT_TYPE_START,
    "progress": playback_pb2.PlaybackEvent.EVENT_TYPE_PROGRESS,
    "pause": playback_pb2.PlaybackEvent.EVENT_TYPE_PAUSE,
    "complete": playback_pb2.PlaybackEvent.EVENT_TYPE_COMPLETE,
    "skip": playback_pb2.PlaybackEvent.EVENT_TYPE_SKIP,
}
MAX_BATCH = 500
MAX_KEY_LENGTH = 200
MAX_TRACK_MS = 6 * 60 * 60 * 1000  # nothing in the catalog runs longer than six hours


@dataclass(frozen=True)
class ReportedEvent:
    """One event as the client reported it (nothing in it is trusted yet)."""

    event: str
    track_id: str
    idempotency_key: str
    position_ms: int
    track_duration_ms: int
    device_id: str
    device_type: str
    context_uri: str
    client_timestamp: Timestamp


@dataclass(frozen=True)
class Verdict:
    """One client event: the published event when it is valid, else why not."""

    index: int
    event: playback_pb2.PlaybackEvent | None = None
    reason: str = ""


@dataclass(frozen=True)
class Reported:
    """What a report did: how many events were published, and why the others were not."""

    accepted: int
    # The verdicts of the rejected events: their index and reason.
    rejected: tuple[Verdict, ...]


def check_batch_size(count: int) -> None:
    if count == 0:
        raise InvalidArgument("events: at least one event is required")
    if count > MAX_BATCH:
        raise InvalidArgument(f"events: at most {MAX_BATCH} events per request, got {count}")


def judge(index: int, raw: ReportedEvent, caller: Caller, received_at: Timestamp) -> Verdict:
    """Validate one client event and build the event it is published as."""
    try:
        event_type = EVENT_TYPES.get(raw.event)
        if event_type is None:
            raise InvalidArgument(f"event must be one of {', '.join(EVENT_TYPES)}, got {raw.event!r}")
        track_id = ids.parse_id_or_uri(raw.track_id, "track")
        if not raw.idempotency_key:
            raise InvalidArgument(f"idempotency_key is required (at most {MAX_KEY_LENGTH} characters)")
        check_key(raw.idempotency_key, "idempotency_key", MAX_KEY_LENGTH)
        if raw.position_ms < 0 or raw.position_ms > MAX_TRACK_MS:
            raise InvalidArgument(f"position_ms must be between 0 and {MAX_TRACK_MS}")
        if raw.track_duration_ms < 0 or raw.track_duration_ms > MAX_TRACK_MS:
            raise InvalidArgument(f"track_duration_ms must be between 0 and {MAX_TRACK_MS}")
        if raw.track_duration_ms and raw.position_ms > raw.track_duration_ms:
            raise InvalidArgument("position_ms is beyond the end of the track")
    except InvalidArgument as err:
        return Verdict(index, reason=err.message)
    user_id = caller.require_user()
    return Verdict(
        index,
        event=playback_pb2.PlaybackEvent(
            event_id=uuid.uuid4().hex,
            idempotency_key=raw.idempotency_key,
            user_id=ids.encode(user_id),
            product=caller.product,
            country=caller.country,  # from the account (ext_authz), never from the client
            track_id=ids.encode(track_id),
            event_type=event_type,
            position_ms=raw.position_ms,
            track_duration_ms=raw.track_duration_ms,
            device_id=raw.device_id,
            device_type=raw.device_type or "unknown",
            context_uri=raw.context_uri,
            client_timestamp=raw.client_timestamp,
            received_at=received_at,
        ),
    )


class PlaybackEvents:
    """Publishes reported events; answers only once the broker acknowledged them (acks=all)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    async def report(self, caller: Caller, events: Sequence[ReportedEvent]) -> Reported:
        caller.require_user()
        check_batch_size(len(events))
        received_at = Timestamp()
        received_at.GetCurrentTime()
        verdicts = [judge(i, raw, caller, received_at) for i, raw in enumerate(events)]
        valid = [v.event for v in verdicts if v.event is not None]
        await self.producer.publish_many(
            topics.PLAYBACK_EVENTS.name, [(event.user_id, event) for event in valid]
        )
        for event in valid:
            name = (
                playback_pb2.PlaybackEvent.EventType.Name(event.event_type)
                .removeprefix("EVENT_TYPE_")
                .lower()
            )
            PLAYBACK_EVENTS.labels(name, device_type_label(event.device_type)).inc()
            if event.event_type == playback_pb2.PlaybackEvent.EVENT_TYPE_START:
                log.info(
                    "playback started",
                    extra={"user_id": event.user_id, "track_id": event.track_id, "event": "stream_started"},
                )
        return Reported(
            accepted=len(valid),
            rejected=tuple(v for v in verdicts if v.event is None),
        )
