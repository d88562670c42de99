"""Validation of client playback events and their translation into Kafka events.

Each event is judged on its own: a bad one is rejected with a reason and the rest of the
batch still goes through, so a client can drop or fix exactly the events that failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2

from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import InvalidArgument
from meshkit.idempotency import check_key

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
class Verdict:
    """One client event: the Kafka event when it is valid, else why not."""

    index: int
    event: playback_pb2.PlaybackEvent | None = None
    reason: str = ""


def check_batch_size(count: int) -> None:
    if count == 0:
        raise InvalidArgument("events: at least one event is required")
    if count > MAX_BATCH:
        raise InvalidArgument(f"events: at most {MAX_BATCH} events per request, got {count}")


def judge(
    index: int, raw: playback_pb2.ClientPlaybackEvent, caller: Caller, received_at: Timestamp
) -> Verdict:
    """Validate one client event and build the Kafka event it becomes."""
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
