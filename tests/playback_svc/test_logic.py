"""Pure logic of playback_svc, without I/O: the stream threshold, royalty weights, quality choice,
queue stepping, the active-streams tracker and the in-process cache."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry, Gauge
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2

from meshkit.context import Caller
from meshkit.errors import InvalidArgument
from meshkit.ttlcache import TTLCache
from playback_svc import events
from playback_svc.clients import AudioFile, audio_file_of
from playback_svc.counter import rules
from playback_svc.counter.active import ActiveSessions
from playback_svc.counter.rules import split_weights
from playback_svc.quality import choose, limit_kbps
from playback_svc.queue import shuffled, step

T = playback_pb2.PlaybackEvent.EventType


@pytest.mark.parametrize(
    ("event_type", "position", "duration", "expected"),
    [
        (T.EVENT_TYPE_PROGRESS, 29_999, 180_000, False),
        (T.EVENT_TYPE_PROGRESS, 30_000, 180_000, True),
        (T.EVENT_TYPE_PROGRESS, 30_000, 0, True),  # unknown duration: 30 s
        (T.EVENT_TYPE_PROGRESS, 29_500, 59_000, True),  # under 60 s: half
        (T.EVENT_TYPE_PROGRESS, 29_999, 60_000, False),  # 60 s is not "shorter than 60 s"
        (T.EVENT_TYPE_PROGRESS, 20_000, 40_000, True),
        (T.EVENT_TYPE_PROGRESS, 19_999, 40_000, False),
        (T.EVENT_TYPE_PROGRESS, 20_000, 40_001, False),  # half rounds up
        (T.EVENT_TYPE_SKIP, 45_000, 180_000, True),  # skipped after 45 s still counts
        (T.EVENT_TYPE_COMPLETE, 10_000, 10_000, True),
        (T.EVENT_TYPE_START, 120_000, 180_000, False),  # a start's position is where it began
    ],
)
def test_stream_threshold(event_type: int, position: int, duration: int, expected: bool) -> None:
    assert rules.counts(event_type, position, duration) is expected


def test_the_prefilter_only_drops_events_that_cannot_count() -> None:
    def event(position: int, duration: int) -> playback_pb2.PlaybackEvent:
        return playback_pb2.PlaybackEvent(
            event_type=T.EVENT_TYPE_PROGRESS, position_ms=position, track_duration_ms=duration
        )

    assert not rules.may_count(event(20_000, 180_000))
    assert rules.may_count(event(30_000, 180_000))
    assert rules.may_count(event(5_000, 0))  # catalog decides
    assert rules.may_count(event(5_000, 50_000))  # short by the client's word: catalog decides
    assert not rules.may_count(event(0, 0))


@pytest.mark.parametrize("artists", [1, 2, 3, 6, 7])
def test_royalty_weights_sum_to_exactly_one(artists: int) -> None:
    weights = split_weights(artists)
    assert len(weights) == artists and sum(weights) == Decimal(1)
    assert all(w == weights[1] for w in weights[1:]) and weights[0] >= weights[-1]
    assert all(w.as_tuple().exponent >= -6 for w in weights)  # fits NUMERIC(9, 6)


def _file(kbps: int, quality: int | None = None) -> AudioFile:
    default = {96: 1, 160: 2, 320: 3}[kbps]
    return audio_file_of(
        catalog_pb2.AudioFile(bitrate_kbps=kbps, quality=quality or default, storage_path=f"t_{kbps}.ogg")
    )


def test_quality_choice_never_exceeds_the_subscription() -> None:
    files = [
        _file(320),
        _file(96),
        _file(160),
        audio_file_of(catalog_pb2.AudioFile(bitrate_kbps=96, quality=4)),
    ]
    assert choose(files, 320, 320).chosen.bitrate_kbps == 320
    assert [f.bitrate_kbps for f in choose(files, 320, 320).alternatives] == [96, 160]  # no preview
    assert choose(files, 200, 160).chosen.bitrate_kbps == 160
    assert choose([_file(160)], 96, 160).chosen.bitrate_kbps == 160  # the lowest rather than none
    assert choose([_file(320)], 160, 160) is None  # a free user never gets the 320 file
    assert choose([], 320, 320) is None
    assert limit_kbps("HIGH", " WiFi ", 0, "free") == 160
    with pytest.raises(InvalidArgument):
        limit_kbps("auto", "wifi", -1, "premium")


def test_queue_steps_and_shuffle() -> None:
    queue = ["a", "b", "c"]
    assert step(queue, "a", forward=True, repeat="off") == 1
    assert step(queue, "c", forward=True, repeat="off") is None
    assert step(queue, "c", forward=True, repeat="context") == 0
    assert step(queue, "a", forward=False, repeat="context") == 2
    assert step(queue, "zz", forward=True, repeat="off") == 0
    order = shuffled(list("abcdefgh"), "c", random.Random(7))
    assert order[0] == "c" and sorted(order) == list("abcdefgh")


def _event(kind: int, key: str, at: float) -> playback_pb2.PlaybackEvent:
    received = Timestamp(seconds=int(at), nanos=int((at % 1) * 1e9))
    return playback_pb2.PlaybackEvent(user_id="u", idempotency_key=key, event_type=kind, received_at=received)


def test_active_streams_count_live_sessions_only() -> None:
    now = [1_000_000.0]
    registry = CollectorRegistry()
    gauge = Gauge("active_streams", "test", registry=registry)
    active = ActiveSessions(window_s=60, clock=lambda: now[0], gauge=gauge)
    active.observe([_event(T.EVENT_TYPE_START, "a", now[0]), _event(T.EVENT_TYPE_START, "b", now[0])])
    active.observe([_event(T.EVENT_TYPE_PROGRESS, "a", now[0] - 500)])  # a replayed old event
    assert registry.get_sample_value("active_streams") == 2
    active.observe([_event(T.EVENT_TYPE_PAUSE, "b", now[0])])
    assert active.count() == 1
    now[0] += 50
    active.observe([_event(T.EVENT_TYPE_PROGRESS, "c", now[0])])
    now[0] += 20  # a's last event is 70 s old, c's 20 s
    assert active.count() == 1
    now[0] += 41
    assert registry.get_sample_value("active_streams") == 0


def test_ttl_cache_expires_and_evicts_least_recently_used() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(max_entries=2, ttl_s=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1
    cache.put("short", 4, ttl_s=1)
    now[0] = 5
    assert cache.get("short") is None and cache.get("a") == 1
    now[0] = 11
    assert cache.get("a") is None


def _client_event(key: str) -> events.ReportedEvent:
    return events.ReportedEvent(
        event="progress",
        track_id="0" * 22,
        idempotency_key=key,
        position_ms=1_000,
        track_duration_ms=2_000,
        device_id="",
        device_type="",
        context_uri="",
        client_timestamp=Timestamp(),
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "idempotency_key is required"),
        ("k" * 201, "at most 200 characters"),
        ("bad\x00key", "control characters are not allowed"),
        ("bad\nkey", "control characters are not allowed"),
    ],
)
def test_an_event_key_no_store_can_hold_is_rejected_at_the_edge(key: str, reason: str) -> None:
    """A NUL in a key used to be published, then fail in the counter's PostgreSQL insert."""
    caller = Caller(user_id=uuid.uuid4(), product="premium")
    rejected = events.judge(0, _client_event(key), caller, Timestamp())
    assert rejected.event is None and reason in rejected.reason
    accepted = events.judge(0, _client_event("retry-safe-1"), caller, Timestamp())
    assert accepted.event is not None and accepted.event.idempotency_key == "retry-safe-1"
