"""Catalog change events: stored by each write in its own transaction, relayed to Kafka after it commits.

A write stores its CatalogChangeEvent in catalog.outbox_events in the same transaction as the
change; the relay publishes pending rows (acks=all) and deletes them. A write wakes the relay at
once, and it also sweeps every few seconds, so an event survives a broker outage or a crash
between commit and publish (delivery is at least once; consumers de-duplicate by event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from catalog_svc.outbox_store import OutboxStore
from meshkit.kafka import Producer

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class _Raw:
    """An already serialised payload, in the shape Producer's serializer expects."""

    payload: bytes

    def SerializeToString(self) -> bytes:  # protobuf's spelling: Producer calls it
        return self.payload


class OutboxRelay:
    """Publishes outbox rows to Kafka: on `kick()` after a commit, and every `interval_s` anyway."""

    def __init__(
        self, store: OutboxStore, producer_factory: Callable[[], Producer], *, interval_s: float = 5.0
    ) -> None:
        self.store = store
        self.producer_factory = producer_factory
        self.interval_s = interval_s
        self._producer: Producer | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Publish soon: called after a write committed."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="catalog-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)  # last chance for what is pending
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
            self._producer = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.warning("could not publish catalog change events; retrying", exc_info=True)

    async def drain(self) -> int:
        """Publish everything pending, oldest first; returns how many events went out."""
        sent = 0
        while True:
            count = await self._publish_batch()
            sent += count
            if count < BATCH:
                return sent

    async def _publish_batch(self) -> int:
        async with self.store.pending(BATCH) as events:
            if not events:
                return 0
            producer = await self._get_producer()
            by_topic: dict[str, list[tuple[str, _Raw]]] = {}
            for event in events:
                by_topic.setdefault(event.topic, []).append((event.key, _Raw(event.payload)))
            for topic, items in by_topic.items():
                await producer.publish_many(topic, items)  # type: ignore[arg-type]
            return len(events)

    async def _get_producer(self) -> Producer:
        if self._producer is None:
            # Connecting blocks (bootstrap, API version probe): keep it off the event loop.
            self._producer = await asyncio.to_thread(self.producer_factory)
        return self._producer
