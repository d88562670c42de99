"""Runs the stream counter as a consumer group (meshkit.kafka.AsyncConsumer) with its outbox relay,
inside playback_svc or on its own.

Each polled batch is handled on the event loop while the consumer thread waits, so offsets are
committed only after the batch's transaction committed; a failing batch (database, catalog down)
is retried with backoff and never skipped.
"""

from __future__ import annotations

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit.config import Settings
from meshkit.kafka import AsyncConsumer, ConsumerConfig, Producer
from meshkit.outbox import OutboxRelay
from playback_svc.clients import Catalog
from playback_svc.counter.active import ActiveSessions
from playback_svc.counter.counting import StreamCounter
from playback_svc.counter.fast_path import FastPath
from playback_svc.counter.store import CounterStore
from playback_svc.metrics import OUTBOX_PUBLISHED
from playback_svc.settings import PlaybackSettings


class CounterRunner:
    """The consumer group and the outbox relay it wakes."""

    def __init__(self, counter: StreamCounter, relay: OutboxRelay, config: ConsumerConfig) -> None:
        self.counter = counter
        self.relay = relay
        self.consumer = AsyncConsumer(config, counter.handle)

    def start(self) -> None:
        """Start in the background (call on the event loop); returns at once, the group joins later."""
        self.counter.after_counted = self.relay.kick
        self.relay.start()
        self.consumer.start()

    async def stop(self) -> None:
        """Stop consuming (an in-flight batch finishes or is abandoned uncommitted), then the relay."""
        await self.consumer.stop()
        await self.relay.stop()


def build_runner(
    settings: Settings,
    playback: PlaybackSettings,
    engine: AsyncEngine,
    redis_client: redis.Redis | None,
    catalog: Catalog,
    producer: Producer,
) -> CounterRunner:
    """The counter as playback_svc and the standalone process run it."""
    store = CounterStore(engine)
    counter = StreamCounter(store, FastPath(redis_client), catalog, ActiveSessions())
    config = ConsumerConfig(
        bootstrap=settings.kafka_bootstrap,
        group_id=playback.counter_group,
        topics=(playback.counter_topic,),
        max_records=playback.counter_max_records,
    )
    # It runs beside the consumer (woken after each counter commit, and every second anyway), so it
    # never sits on the consumer's path between the database commit and the offset commit.
    relay = OutboxRelay(
        store,
        producer,
        name="playback-outbox-relay",
        batch_size=500,
        interval_s=1.0,
        on_published=OUTBOX_PUBLISHED.inc,
    )
    return CounterRunner(counter, relay, config)
