"""rec's copy of the listening history: counted streams applied exactly once, from Kafka too."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2
from sqlalchemy import func, select

from meshkit import ids
from meshkit.kafka import Producer
from rec_svc.consumers import STREAMS_TOPIC, EventApplier, RecConsumer
from rec_svc.index import IndexHolder
from rec_svc.models import Listen, TrackInfo
from tests.rec_svc.conftest import RecEnv


def _event(user: uuid.UUID, track: uuid.UUID, artist: uuid.UUID, stream_id: str | None = None) -> bytes:
    at = Timestamp()
    at.FromDatetime(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    return playback_pb2.StreamCountedEvent(
        stream_id=uuid.uuid4().hex if stream_id is None else stream_id,
        user_id=ids.encode(user),
        track_id=ids.encode(track),
        artist_ids=[ids.encode(artist)],
        counted_at=at,
        played_ms=30_000,
    ).SerializeToString()


async def _listens(env: RecEnv, user: uuid.UUID) -> int:
    async with env.runtime.service.store.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Listen.user_id == user)))


async def test_counted_streams_are_applied_exactly_once(rec_env: RecEnv) -> None:
    applier = rec_env.runtime.applier
    user, track, artist = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, second = _event(user, track, artist), _event(user, track, artist)
    assert await applier.apply_streams([first, second, first]) == 2
    assert (
        await applier.apply_streams([second, b"\xff\x00not-protobuf", _event(user, track, artist, "")]) == 0
    )
    assert await _listens(rec_env, user) == 2
    async with rec_env.runtime.service.store.sessions() as session:
        info = await session.get(TrackInfo, track)
    assert info is not None and info.artist_ids == [artist], "a track first seen in a stream is remembered"


async def test_the_consumer_group_applies_streams_from_kafka(rec_env: RecEnv, kafka_bootstrap: str) -> None:
    store = rec_env.runtime.service.store
    applier = EventApplier(store, rec_env.runtime.applier.catalog, IndexHolder())
    consumer = RecConsumer(
        kafka_bootstrap, f"rec-test-{uuid.uuid4().hex[:8]}", applier, asyncio.get_running_loop()
    )
    user, track, artist = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    producer = Producer(kafka_bootstrap, client_id="rec-test")
    consumer.start()
    try:
        duplicate = _event(user, track, artist)
        for value in (duplicate, _event(user, track, artist), duplicate):
            await producer.publish(
                STREAMS_TOPIC, ids.encode(user), playback_pb2.StreamCountedEvent.FromString(value)
            )
        deadline = time.monotonic() + 45
        while await _listens(rec_env, user) < 2:
            assert time.monotonic() < deadline, "the consumer did not apply the events in time"
            await asyncio.sleep(0.2)  # polling a condition with a deadline, not waiting and hoping
    finally:
        producer.close()
        await asyncio.to_thread(consumer.stop)
    assert await _listens(rec_env, user) == 2, "the redelivered duplicate inserted nothing"
