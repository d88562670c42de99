"""rec's copy of the listening history: counted streams and skips applied exactly once, from Kafka too."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2
from sqlalchemy import func, select

from meshkit import db, ids
from meshkit.kafka import AsyncConsumer, Producer
from rec_svc import recommend
from rec_svc.consumers import PLAYBACK_TOPIC, STREAMS_TOPIC, EventApplier, consumer_group
from rec_svc.holder import IndexHolder
from rec_svc.inputs import RecInputSource
from rec_svc.model import weighting
from rec_svc.model.params import ModelParams
from rec_svc.model.types import TrackMeta
from rec_svc.models import Listen, Skip, TrackInfo
from rec_svc.store import RecStore
from tests.rec_svc.conftest import NOW, RecEnv

Kind = playback_pb2.PlaybackEvent.EventType


def _event(
    user: uuid.UUID,
    track: uuid.UUID,
    artist: uuid.UUID,
    stream_id: str | None = None,
    when: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
) -> bytes:
    at = Timestamp()
    at.FromDatetime(when)
    return playback_pb2.StreamCountedEvent(
        stream_id=uuid.uuid4().hex if stream_id is None else stream_id,
        user_id=ids.encode(user),
        track_id=ids.encode(track),
        artist_ids=[ids.encode(artist)],
        counted_at=at,
        played_ms=30_000,
    ).SerializeToString()


def _playback(
    user: uuid.UUID, track: uuid.UUID, kind: int, session: str, position_ms: int, at: datetime
) -> playback_pb2.PlaybackEvent:
    """A playback event as playback_svc publishes it (a fresh event id, as a client retry gets too)."""
    received = Timestamp()
    received.FromDatetime(at)
    return playback_pb2.PlaybackEvent(
        event_id=uuid.uuid4().hex,
        idempotency_key=session,
        user_id=ids.encode(user),
        product="premium",
        track_id=ids.encode(track),
        event_type=kind,
        position_ms=position_ms,
        track_duration_ms=200_000,
        device_type="smartphone",
        received_at=received,
    )


async def _listens(env: RecEnv, user: uuid.UUID) -> int:
    async with env.runtime.recommendations.store.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Listen.user_id == user)))


async def _skips(env: RecEnv, user: uuid.UUID) -> list[Skip]:
    async with env.runtime.recommendations.store.sessions() as session:
        return list(await session.scalars(select(Skip).where(Skip.user_id == user).order_by(Skip.skipped_at)))


async def _until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 45.0) -> None:
    """Poll a condition with a deadline (not a sleep and a hope)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"the consumer did not {what} in time"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def group(rec_env: RecEnv, kafka_bootstrap: str) -> AsyncIterator[AsyncConsumer]:
    """One consumer group for this module's Kafka tests (a group join costs seconds)."""
    store = rec_env.runtime.recommendations.store
    applier = EventApplier(store, rec_env.runtime.applier.catalog, IndexHolder())
    consumer = consumer_group(kafka_bootstrap, f"rec-test-{uuid.uuid4().hex[:8]}", applier)
    consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[Producer]:
    producer = Producer(kafka_bootstrap, client_id="rec-test")
    try:
        yield producer
    finally:
        producer.close()


async def test_counted_streams_are_applied_exactly_once(rec_env: RecEnv) -> None:
    applier = rec_env.runtime.applier
    user, track, artist = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, second = _event(user, track, artist), _event(user, track, artist)
    assert await applier.apply_streams([first, second, first]) == 2
    assert (
        await applier.apply_streams([second, b"\xff\x00not-protobuf", _event(user, track, artist, "")]) == 0
    )
    assert await _listens(rec_env, user) == 2
    async with rec_env.runtime.recommendations.store.sessions() as session:
        info = await session.get(TrackInfo, track)
    assert info is not None and info.artist_ids == [artist], "a track first seen in a stream is remembered"


async def test_the_consumer_group_applies_streams_from_kafka(
    rec_env: RecEnv, group: AsyncConsumer, producer: Producer
) -> None:
    user, track, artist = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    duplicate = _event(user, track, artist)
    for value in (duplicate, _event(user, track, artist), duplicate):
        await producer.publish(
            STREAMS_TOPIC, ids.encode(user), playback_pb2.StreamCountedEvent.FromString(value)
        )

    async def applied() -> bool:
        return await _listens(rec_env, user) >= 2

    await _until(applied, "apply the counted streams")
    assert await _listens(rec_env, user) == 2, "the redelivered duplicate inserted nothing"


async def test_skips_are_applied_once_and_other_playback_events_ignored(rec_env: RecEnv) -> None:
    applier = rec_env.runtime.applier
    user, track, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = NOW - timedelta(hours=3)
    skip = _playback(user, track, Kind.EVENT_TYPE_SKIP, "s1", 12_000, at).SerializeToString()
    retried = _playback(user, track, Kind.EVENT_TYPE_SKIP, "s1", 14_000, at + timedelta(seconds=5))
    batch = [
        _playback(user, other, Kind.EVENT_TYPE_START, "s0", 0, at).SerializeToString(),
        _playback(user, other, Kind.EVENT_TYPE_PROGRESS, "s0", 10_000, at).SerializeToString(),
        _playback(user, other, Kind.EVENT_TYPE_PAUSE, "s0", 20_000, at).SerializeToString(),
        _playback(user, other, Kind.EVENT_TYPE_COMPLETE, "s0", 200_000, at).SerializeToString(),
        skip,
        retried.SerializeToString(),  # the same session skipped again (a client retry): still one skip
        skip,
        b"\xff\x00not-protobuf",
        _playback(user, other, Kind.EVENT_TYPE_SKIP, "", 1_000, at).SerializeToString(),
        _playback(user, other, Kind.EVENT_TYPE_SKIP, "s\x002", 1_000, at).SerializeToString(),
        _playback(user, other, Kind.EVENT_TYPE_SKIP, "s3", -1, at).SerializeToString(),
    ]
    assert await applier.apply_skips(batch) == 1
    assert await applier.apply_skips(batch) == 0, "a replayed batch changes nothing"
    assert await applier.apply_skips([retried.SerializeToString()]) == 0, "a later retry changes nothing"
    rows = await _skips(rec_env, user)
    assert [(r.idempotency_key, r.track_id, r.position_ms, r.skipped_at) for r in rows] == [
        ("s1", track, 12_000, at)
    ], "the first skip of the session, at the server's receive time"
    assert rows[0].weight < 0
    assert await _listens(rec_env, user) == 0, "a skip is not a counted stream"


async def test_skips_from_kafka_count_against_the_track_in_model_inputs(
    rec_env: RecEnv, group: AsyncConsumer, producer: Producer
) -> None:
    store = rec_env.runtime.recommendations.store
    user = uuid.uuid4()
    skipped, completed, sentinel = (t.track_id for t in rec_env.world.tracks[:3])
    at = NOW - timedelta(days=2)
    skip = _playback(user, skipped, Kind.EVENT_TYPE_SKIP, "s1", 8_000, at)
    events = [
        _playback(user, skipped, Kind.EVENT_TYPE_START, "s1", 0, at),
        _playback(user, skipped, Kind.EVENT_TYPE_PROGRESS, "s1", 5_000, at),
        skip,
        skip,  # delivered twice
        _playback(user, completed, Kind.EVENT_TYPE_START, "s2", 0, at),
        _playback(user, completed, Kind.EVENT_TYPE_PAUSE, "s2", 40_000, at),
        _playback(user, completed, Kind.EVENT_TYPE_COMPLETE, "s2", 200_000, at),
        # Keyed by user, so all land on one partition in order: once this one is applied, so is the rest.
        _playback(user, sentinel, Kind.EVENT_TYPE_SKIP, "s3", 3_000, at + timedelta(minutes=5)),
    ]
    await producer.publish_many(PLAYBACK_TOPIC, [(ids.encode(user), e) for e in events])

    async def applied() -> bool:
        return len(await _skips(rec_env, user)) >= 2

    await _until(applied, "apply the skips")
    rows = await _skips(rec_env, user)
    assert [(r.idempotency_key, r.track_id) for r in rows] == [("s1", skipped), ("s3", sentinel)], (
        "each skip once; start, progress, pause and complete are not rec's"
    )
    assert await _listens(rec_env, user) == 0

    # The same user streamed another track (counted), so there is something positive to weigh against.
    await rec_env.runtime.applier.apply_streams([_event(user, completed, uuid.uuid4(), when=at)])

    # The batch build's input: the skips are negative interactions, and net against their tracks.
    params = ModelParams()
    inputs = await RecInputSource(store, rec_env.runtime.applier.catalog, params).load(NOW)
    inter = inputs.interactions
    mine = inter.user_idx == inter.users.index(user)
    tracks = [inter.tracks[t] for t in inter.track_idx[mine].tolist()]
    got = sorted(zip(tracks, inter.weight[mine].tolist(), strict=True))
    assert got == sorted([(completed, 1.0), (skipped, -1.0), (sentinel, -1.0)]), "each once, skips negative"
    net = weighting.affinity(
        inter.track_idx[mine],
        inter.ts[mine],
        inter.weight[mine],
        NOW.timestamp(),
        half_life_days=params.recency_half_life_days,
        skip_scale=params.skip_scale,
    )
    assert net[inter.tracks.index(skipped)] < 0 < net[inter.tracks.index(completed)]

    # The on-demand path: the live history carries them, and the user embedding counts them against.
    plays = await store.history(user, NOW - timedelta(days=params.history_days))
    assert sorted((p.track_id, p.weight) for p in plays) == got
    snap = rec_env.runtime.recommendations.snapshot()
    with_skips = recommend.user_state(snap, user, plays, NOW)
    without = recommend.user_state(snap, user, [p for p in plays if p.weight > 0], NOW)
    row = snap.track_row(skipped)
    assert row is not None and with_skips.affinity[row] < 0 and row in with_skips.heard
    vector = snap.tracks.vectors([row])[0]
    assert with_skips.vector is not None and without.vector is not None
    assert float(np.dot(with_skips.vector, vector)) < float(np.dot(without.vector, vector)), (
        "the skip pushes the user embedding away from the skipped track"
    )


@pytest.fixture
async def own_store(database_url: str) -> AsyncIterator[RecStore]:
    """A RecStore on the run's main database: rec_env's service follows its own database's
    rec.tracks, and a made-up track there would reach its index."""
    engine = db.create_engine(database_url, pool_size=1)
    yield RecStore(db.session_factory(engine))
    await engine.dispose()


async def test_only_changed_track_facts_are_stamped_for_the_replicas_to_read(own_store: RecStore) -> None:
    store = own_store
    track, artist = uuid.uuid4(), uuid.uuid4()
    meta = TrackMeta(track_id=track, artist_ids=(artist,), genres=("rock",), features=None, popularity=10.0)

    async def stamp() -> datetime:
        async with store.sessions() as session:
            info = await session.get(TrackInfo, track, populate_existing=True)
        assert info is not None
        return info.updated_at

    await store.upsert_tracks([meta])
    first = await stamp()
    since = await store.clock()
    await store.upsert_tracks([meta])  # a build upserts every track: an unchanged one stays unstamped
    assert await stamp() == first
    assert [
        m.track_id for m, _, _ in (await store.tracks_changed_since(since))[0] if m.track_id == track
    ] == []

    await store.upsert_tracks([dataclasses.replace(meta, popularity=55.0)])
    changed, _ = await store.tracks_changed_since(since)
    assert [(m.popularity, deleted) for m, deleted, _ in changed if m.track_id == track] == [(55.0, False)]

    await store.mark_deleted([track])
    gone = await stamp()
    await store.mark_deleted([track])  # already gone: not stamped again
    assert await stamp() == gone
    await store.upsert_tracks([meta])  # back in the catalog: revived
    revived, _ = await store.tracks_changed_since(gone)
    assert [deleted for m, deleted, _ in revived if m.track_id == track] == [False]
