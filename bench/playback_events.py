"""Playback events → counted streams: sustained events/s through Kafka and the stream counter,
with exactly-once on (unique idempotency keys in PostgreSQL, offsets after the commit, the
outbox), and the consumer lag over the run.

Private data tier (fresh database, Redis db 14, a tansu broker), the real counter process
(``python -m playback_svc.counter``) and a catalog stand-in for track artists and durations.
Events are produced straight to ``playback.events.v1`` with acks=all (the servicer's path in
front of that is measured by the stream-start benchmark's neighbour, not here). Sessions are
start, progress at 10/20/30/40 s and complete; 10% of sessions are sent twice (client retries).

    .venv/bin/python -m bench.playback_events [--sessions 10000] [--rate 5000]

Without --rate the producer outruns the counter and the figure is the counter's capacity; with
--rate the lag shows whether that rate is sustained (bounded lag) or not (lag keeps growing).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import uuid

from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from spotify.playback.v1 import playback_pb2
from sqlalchemy import create_engine, text

from bench.playback_common import StandInCatalog, data_tier, env_with, serve_catalog, synthetic_track
from meshkit import ids, topics
from meshkit.config import PROJECT_ROOT

TOPIC = topics.PLAYBACK_EVENTS.name
PARTITIONS = 6
GROUP = "bench-stream-counter"
T = playback_pb2.PlaybackEvent.EventType
SESSION = [
    (T.EVENT_TYPE_START, 0),
    (T.EVENT_TYPE_PROGRESS, 10_000),
    (T.EVENT_TYPE_PROGRESS, 20_000),
    (T.EVENT_TYPE_PROGRESS, 30_000),
    (T.EVENT_TYPE_PROGRESS, 40_000),
    (T.EVENT_TYPE_COMPLETE, 180_000),
]


def session_events(user: str, track: str, key: str) -> list[tuple[bytes, bytes]]:
    received = Timestamp()
    received.GetCurrentTime()
    return [
        (
            user.encode(),
            playback_pb2.PlaybackEvent(
                event_id=uuid.uuid4().hex,
                idempotency_key=key,
                user_id=user,
                product="premium",
                track_id=track,
                event_type=kind,
                position_ms=position,
                track_duration_ms=180_000,
                device_type="smartphone",
                received_at=received,
            ).SerializeToString(),
        )
        for kind, position in SESSION
    ]


class Produced:
    """End offsets per partition as the broker acknowledges them (tansu's ListOffsets is unreliable)."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}
        self.lock = threading.Lock()

    def ack(self, meta) -> None:
        with self.lock:
            self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)

    def snapshot(self) -> dict[int, int]:
        with self.lock:
            return dict(self.ends)


def sample_lag(
    bootstrap: str, produced: Produced, stop: threading.Event, out: list[tuple[float, int]]
) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        start = time.monotonic()
        while not stop.wait(0.5):
            ends = produced.snapshot()
            committed = {p: consumer.committed(TopicPartition(TOPIC, p)) or 0 for p in ends}
            out.append((time.monotonic() - start, sum(max(0, ends[p] - committed[p]) for p in ends)))
    finally:
        consumer.close()


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.playback_events", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument(
        "--rate", type=int, default=0, help="events/s to produce at (0: as fast as the broker acknowledges)"
    )
    args = parser.parse_args()
    rng = random.Random(42)

    catalog = StandInCatalog()
    tracks = [synthetic_track() for _ in range(args.tracks)]
    for track in tracks:
        catalog.add(track)
    users = [ids.encode(uuid.uuid4()) for _ in range(args.users)]

    with data_tier() as tier, serve_catalog(catalog) as catalog_addr:
        engine = create_engine(tier.database_url)
        tier.procs.spawn(
            "counter",
            [sys.executable, "-m", "playback_svc.counter"],
            env=env_with(
                DATABASE_URL=tier.database_url,
                REDIS_URL=tier.redis_url,
                KAFKA_BOOTSTRAP=tier.kafka_bootstrap,
                CATALOG_ADDR=catalog_addr,
                PLAYBACK_COUNTER_GROUP=GROUP,
                METRICS_PORT="-1",
                LOG_LEVEL="WARNING",
            ),
            cwd=PROJECT_ROOT,
        )
        producer = KafkaProducer(
            bootstrap_servers=tier.kafka_bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
        )
        produced = Produced()
        # Warm-up: one session, counted, so the group has joined before the clock starts.
        for key, value in session_events(users[0], tracks[0].id, "warm-up"):
            producer.send(TOPIC, key=key, value=value).add_callback(produced.ack)
        producer.flush()
        deadline = time.monotonic() + 60
        while count(engine, "SELECT count(*) FROM playback.counted_streams") < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the counter did not count the warm-up session within 60 s")
            time.sleep(0.2)

        sessions = [
            (rng.choice(users), rng.choice(tracks).id, uuid.uuid4().hex) for _ in range(args.sessions)
        ]
        retried = set(rng.sample(range(args.sessions), args.sessions // 10))
        messages = []
        for i, (user, track, idempotency_key) in enumerate(sessions):
            events = session_events(user, track, idempotency_key)
            messages += events + (events if i in retried else [])
        print(
            f"events: {len(messages):,} ({args.sessions:,} sessions, {len(retried):,} sent twice), "
            f"users {args.users:,}, tracks {args.tracks}"
        )

        lag: list[tuple[float, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_lag, args=(tier.kafka_bootstrap, produced, stop, lag))
        sampler.start()
        started = time.monotonic()
        for i, (key, value) in enumerate(messages):
            if args.rate and i % 100 == 0:
                ahead = started + i / args.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            producer.send(TOPIC, key=key, value=value).add_callback(produced.ack)
        producer.flush()
        produce_s = time.monotonic() - started
        expected = args.sessions + 1
        deadline = time.monotonic() + 600
        while (counted := count(engine, "SELECT count(*) FROM playback.counted_streams")) < expected:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        total_s = time.monotonic() - started
        stop.set()
        sampler.join()
        producer.close()

        time.sleep(2)  # let the relay publish the last outbox rows before checking them
        streams = count(engine, "SELECT coalesce(sum(stream_count), 0) FROM playback.track_stream_counts")
        royalties = count(engine, "SELECT count(*) FROM playback.royalty_attributions")
        history = count(engine, "SELECT count(*) FROM playback.listening_history")
        unpublished = count(engine, "SELECT count(*) FROM playback.outbox WHERE published_at IS NULL")
        engine.dispose()

    lags = [value for _, value in lag] or [0]
    target = f" (paced at {args.rate:,}/s)" if args.rate else ""
    print(
        f"producer: {len(messages) / produce_s:,.0f} events/s acknowledged (acks=all){target}, "
        f"{produce_s:.1f} s"
    )
    print(
        f"end to end: {len(messages) / total_s:,.0f} events/s from first send to the last counted row "
        f"({total_s:.1f} s), {args.sessions / total_s:,.0f} counted streams/s"
    )
    print(
        f"consumer lag (messages, sampled every 0.5 s): max {max(lags):,}, "
        f"mean {sum(lags) / len(lags):,.0f}, "
        f"at the end of producing {next((v for t, v in lag if t >= produce_s), lags[-1]):,}"
    )
    exact = counted == streams == history == expected and royalties == expected * 2
    print(
        f"exactly-once check: counted {counted:,} / expected {expected:,}, track counts {streams:,}, "
        f"history {history:,}, royalty rows {royalties:,} (2 artists each), "
        f"outbox unpublished {unpublished} -> {'OK' if exact else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
