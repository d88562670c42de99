"""The stream counter end to end: ReportPlaybackEvents → Kafka (tansu) → consumer group →
PostgreSQL, with Redis as the fast path, on the in-process playback_svc; track durations and
credits come from the mesh's catalog_svc.

Every test uses users of its own, so assertions never depend on what else is on the shared topic.
"Nothing was counted" is never waited for with a sleep: a later session of the same user that
does count is the barrier. The topic is keyed by user, so one user's events are consumed in order,
and once the barrier is counted every earlier event of that user has been handled.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import redis.asyncio as redis
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from spotify.playback.v1 import playback_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit import ids, topics
from playback_svc.counter.fast_path import FAST_PATH_PREFIX
from tests.playback_svc.data import CatalogWriter
from tests.playback_svc.helpers import eventually, new_user_id, rows, scalar

LONG_MS = 180_000


def session(
    track_id: str, key: str, positions: list[int], duration_ms: int = LONG_MS
) -> list[dict[str, Any]]:
    """A start at 0 and a progress event at each position (ms), as a client reports them."""
    start = {"idempotency_key": key, "track_id": track_id, "event": "start", "track_duration_ms": duration_ms}
    events = [start]
    events += [
        {
            "idempotency_key": key,
            "track_id": track_id,
            "event": "progress",
            "position_ms": position,
            "track_duration_ms": duration_ms,
            "device_type": "smartphone",
        }
        for position in positions
    ]
    return events


def scoped(user_id: str, key: str) -> str:
    return f"{user_id}:{key}"


async def counted(db: AsyncEngine, user_id: str, key: str) -> int:
    return await scalar(
        db, "SELECT count(*) FROM playback.counted_streams WHERE idempotency_key = :k", k=scoped(user_id, key)
    )


async def user_streams(db: AsyncEngine, user_id: str) -> int:
    return await scalar(
        db, "SELECT count(*) FROM playback.counted_streams WHERE user_id = :u", u=ids.decode(user_id)
    )


async def track_count(db: AsyncEngine, track_id: str) -> int:
    value = await scalar(
        db,
        "SELECT stream_count FROM playback.track_stream_counts WHERE track_id = :t",
        t=ids.decode(track_id),
    )
    return int(value or 0)


async def barrier(playback, db: AsyncEngine, catalog_writer: CatalogWriter, user_id: str) -> None:
    """Report a session that counts and wait for it: every earlier event of the user is handled."""
    track = await catalog_writer.track(LONG_MS)
    key = f"barrier-{uuid.uuid4().hex}"
    await playback.report(user_id, session(track, key, [31_000]))

    async def done() -> bool:
        return await counted(db, user_id, key) == 1

    await eventually(done, within=40)


async def test_29_seconds_count_nothing_and_30_count_one(playback, db, catalog_writer) -> None:
    user = new_user_id()
    track = await catalog_writer.track(LONG_MS)
    await playback.report(user, session(track, "short-listen", [10_000, 20_000, 29_000, 29_999]))
    await playback.report(user, session(track, "real-listen", [10_000, 20_000, 30_000, 40_000, 50_000]))

    async def real_listen_counted() -> bool:
        return await counted(db, user, "real-listen") == 1

    await eventually(real_listen_counted, within=40)
    assert await counted(db, user, "short-listen") == 0
    assert await user_streams(db, user) == 1
    assert await track_count(db, track) == 1
    history = await rows(
        db,
        "SELECT ms_played, device_type, stream_id IS NOT NULL FROM playback.listening_history "
        "WHERE user_id = :u",
        u=ids.decode(user),
    )
    assert history == [(30_000, "smartphone", True)]  # the first qualifying event made it count


async def test_the_same_events_twice_count_once(playback, db, catalog_writer) -> None:
    user = new_user_id()
    track = await catalog_writer.track(LONG_MS)
    events = session(track, "replayed", [15_000, 30_000, 45_000])
    await playback.report(user, events)
    await playback.report(user, events)  # a client retrying the whole batch
    await barrier(playback, db, catalog_writer, user)
    assert await counted(db, user, "replayed") == 1
    assert await track_count(db, track) == 1
    assert await user_streams(db, user) == 2  # the session and the barrier


async def test_a_short_track_counts_at_half_by_catalogs_duration(playback, db, catalog_writer) -> None:
    user = new_user_id()
    short = await catalog_writer.track(40_000)
    long = await catalog_writer.track(LONG_MS)
    await playback.report(user, session(short, "almost-half", [10_000, 19_999], duration_ms=40_000))
    await playback.report(user, session(short, "half", [10_000, 20_000], duration_ms=40_000))
    # A client claiming a 10 s duration for a 180 s track does not make it count at 5 s.
    await playback.report(user, session(long, "understated", [6_000], duration_ms=10_000))
    await barrier(playback, db, catalog_writer, user)
    assert await counted(db, user, "almost-half") == 0
    assert await counted(db, user, "half") == 1
    assert await counted(db, user, "understated") == 0
    assert await track_count(db, short) == 1
    assert await track_count(db, long) == 0


async def test_unknown_tracks_never_count(playback, db, catalog_writer) -> None:
    user = new_user_id()
    unknown = ids.encode(uuid.uuid4())  # valid id, not in the catalog
    await playback.report(user, session(unknown, "ghost", [45_000]))
    await barrier(playback, db, catalog_writer, user)
    assert await counted(db, user, "ghost") == 0
    assert await track_count(db, unknown) == 0


async def test_a_counted_stream_credits_every_artist_and_is_announced(playback, db, catalog_writer) -> None:
    user = new_user_id()
    track = await catalog_writer.track(LONG_MS)
    artists = await catalog_writer.credited(track, 3)
    await playback.report(user, session(track, "trio", [30_000]))

    async def stream_id() -> uuid.UUID | None:
        return await scalar(
            db,
            "SELECT id FROM playback.counted_streams WHERE idempotency_key = :k",
            k=scoped(user, "trio"),
        )

    stream = await eventually(stream_id, within=40)
    royalties = await rows(
        db,
        "SELECT artist_id, weight, product FROM playback.royalty_attributions WHERE stream_id = :s",
        s=stream,
    )
    assert sorted(ids.encode(r[0]) for r in royalties) == sorted(artists)
    assert sum(r[1] for r in royalties) == Decimal(1)
    assert {r[2] for r in royalties} == {"premium"}

    async def published() -> bool:
        return bool(
            await scalar(
                db,
                "SELECT bool_and(published_at IS NOT NULL) FROM playback.outbox "
                "WHERE topic = 'streams.counted.v1' AND key = :key",
                key=track.encode(),
            )
        )

    await eventually(published, within=20)
    message = _find_counted_event(playback.settings.kafka_bootstrap, ids.encode(stream))
    assert message.user_id == user and message.track_id == track
    assert sorted(message.artist_ids) == sorted(artists)
    assert message.idempotency_key == scoped(user, "trio")
    assert message.played_ms == 30_000


def _find_counted_event(bootstrap: str, stream_id: str) -> playback_pb2.StreamCountedEvent:
    """Scan streams.counted.v1 from the beginning for one stream's event (at-least-once: any copy)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        topic = topics.STREAMS_COUNTED.name
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        for record in consumer:
            message = playback_pb2.StreamCountedEvent.FromString(record.value)
            if message.stream_id == stream_id:
                return message
    finally:
        consumer.close()
    raise AssertionError(f"no StreamCountedEvent for stream {stream_id} on streams.counted.v1")


async def test_flushing_redis_mid_run_changes_no_count(
    playback, db, catalog_writer, private_redis_url
) -> None:
    user = new_user_id()
    tracks = (await catalog_writer.album([LONG_MS] * 4)).tracks
    keys = [f"s{i}" for i in range(20)]
    events = {key: session(tracks[i % 4], key, [30_000, 40_000]) for i, key in enumerate(keys)}
    client = redis.Redis.from_url(private_redis_url, decode_responses=True)
    try:
        # Wave 1 is counted, and the fast path remembers it.
        for key in keys[:10]:
            await playback.report(user, events[key])

        async def wave_one_counted() -> bool:
            return await user_streams(db, user) == 10

        await eventually(wave_one_counted, within=40)

        # The counter writes the fast path after its commit: the rows can be seen a moment first.
        async def remembered() -> bool:
            return bool(
                await client.exists(*(FAST_PATH_PREFIX + scoped(user, key) for key in keys[:10])) == 10
            )

        await eventually(remembered, within=10)
        # Redis is lost while wave 1 is replayed and wave 2 arrives, interleaved with flushes.
        for i, key in enumerate(keys):
            if i % 5 == 0:
                await client.flushdb()
            await playback.report(user, events[key])
        await client.flushdb()
        for key in keys:
            await playback.report(user, events[key])
        await barrier(playback, db, catalog_writer, user)
    finally:
        await client.aclose()
    for key in keys:
        assert await counted(db, user, key) == 1, key
    assert [await track_count(db, track) for track in tracks] == [5, 5, 5, 5]
    assert await user_streams(db, user) == 21  # 20 sessions and the barrier


async def test_metrics_count_events_and_live_sessions(playback, catalog_writer) -> None:
    user = new_user_id()
    track = await catalog_writer.track()
    events_before = REGISTRY.get_sample_value(
        "playback_events_total", {"event_type": "progress", "device_type": "smartphone"}
    )
    await playback.report(user, session(track, "live", [5_000]))
    active = playback.runner.counter.active

    async def live() -> bool:
        return scoped(user, "live") in active

    await eventually(live, within=40)
    # The exported gauge is this counter's live-session count (our session among them), not a
    # constant or another tracker's.
    assert REGISTRY.get_sample_value("active_streams") == active.count() > 0
    events_after = REGISTRY.get_sample_value(
        "playback_events_total", {"event_type": "progress", "device_type": "smartphone"}
    )
    assert events_after == (events_before or 0) + 1
    await playback.report(
        user, [{"idempotency_key": "live", "track_id": track, "event": "pause", "position_ms": 6_000}]
    )

    async def ended() -> bool:
        return scoped(user, "live") not in active

    await eventually(ended, within=20)
