"""When a playback session counts as a stream: at 30 s of playback, or at half of a track shorter
than 60 s; and how a counted stream's royalties split among its credited artists.

Pure functions, so the rules are tested without a broker.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from spotify.playback.v1 import playback_pb2

STREAM_THRESHOLD_MS = 30_000
SHORT_TRACK_MS = 60_000

_EventType = playback_pb2.PlaybackEvent.EventType
_WEIGHT_STEP = Decimal("0.000001")  # royalty_attributions.weight is NUMERIC(9, 6)
# A start event's position is where playback began (a resume or a seek), not how far it got, so
# it never makes a session count; every other event reports progress.
COUNTING_EVENT_TYPES = frozenset(
    {
        _EventType.EVENT_TYPE_PROGRESS,
        _EventType.EVENT_TYPE_PAUSE,
        _EventType.EVENT_TYPE_COMPLETE,
        _EventType.EVENT_TYPE_SKIP,
    }
)


def threshold_ms(duration_ms: int) -> int:
    """Position at which a session of a track this long counts (unknown duration: 30 s)."""
    if 0 < duration_ms < SHORT_TRACK_MS:
        return (duration_ms + 1) // 2  # half, rounded up: a 40 001 ms track counts at 20 001 ms
    return STREAM_THRESHOLD_MS


def counts(event_type: int, position_ms: int, duration_ms: int) -> bool:
    """Whether an event at ``position_ms`` of a track of ``duration_ms`` makes its session count."""
    return event_type in COUNTING_EVENT_TYPES and position_ms >= threshold_ms(duration_ms)


def may_count(event: playback_pb2.PlaybackEvent) -> bool:
    """A cheap pre-filter on the client's own duration, before catalog is asked for the real one.

    The authoritative duration is catalog's; this only skips events that cannot count whatever
    the duration turns out to be (position below 30 s and the client says the track is long), so
    the common progress event at 10 s or 20 s never costs a lookup. A client that understates a
    track's length gains nothing: the final decision uses catalog's duration.
    """
    if event.event_type not in COUNTING_EVENT_TYPES or event.position_ms <= 0:
        return False
    if event.position_ms >= STREAM_THRESHOLD_MS:
        return True
    client_duration = event.track_duration_ms
    return client_duration == 0 or client_duration < SHORT_TRACK_MS


def split_weights(count: int) -> list[Decimal]:
    """``count`` weights of 1/count at NUMERIC(9, 6) precision that sum to exactly 1.

    The rounding remainder goes to the first (primary) artist, so a report that sums weights
    never loses or invents a fraction of a stream.
    """
    if count <= 0:
        return []
    share = (Decimal(1) / count).quantize(_WEIGHT_STEP, rounding=ROUND_DOWN)
    return [Decimal(1) - share * (count - 1), *([share] * (count - 1))]
