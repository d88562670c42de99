"""Runs the stream counter as a consumer group (meshkit.kafka.AsyncConsumer) with its outbox relay,
inside playback_svc or on its own.

Each polled batch is handled on the event loop while the consumer thread waits, so offsets are
committed only after the batch's transaction committed; a failing batch (database, catalog down)
is retried with backoff and never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit.config import Settings
from meshkit.kafka import AsyncConsumer, ConsumerConfig, Producer
from playback_svc.clients import Catalog
from playback_svc.counter.active import ActiveSessions
from playback_svc.counter.counting import StreamCounter
from playback_svc.counter.fast_path import FastPath
from playback_svc.counter.relay import OutboxRelay
from playback_svc.counter.store import CounterStore
from playback_svc.settings import PlaybackSettings


class CounterRunner:
    """The consumer group and the outbox relay it wakes."""

    def __init__(self, counter: StreamCounter, relay: OutboxRelay, config: ConsumerConfig) -> None:
        self.counter = counter
        self.relay = relay
        self.consumer = AsyncConsumer(config, counter.handle)
        self._relay_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start in the background (call on the event loop); returns at once, the group joins later."""
        self.counter.after_counted = self.relay.wake
        self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
        self.consumer.start()

    async def stop(self) -> None:
        """Stop consuming (an in-flight batch finishes or is abandoned uncommitted), then the relay."""
        await self.consumer.stop()
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task


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
    return CounterRunner(counter, OutboxRelay(store, producer), config)
