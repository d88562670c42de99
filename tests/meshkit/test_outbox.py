"""meshkit.outbox.OutboxRelay on the test broker: pending events reach Kafka with their keys, are
retired only after the broker acknowledged them, and stay pending when publishing fails.

The store here is a list (the relay's contract is `pending(limit)`); catalog's and playback's
stores are exercised by their own services' tests against PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from kafka import KafkaConsumer

from meshkit.kafka import Producer, ensure_topics
from meshkit.outbox import OutboxRelay, PendingEvent


class ListStore:
    """Pending events in a list; a batch is retired when its block ends without an error."""

    def __init__(self, events: list[PendingEvent]) -> None:
        self.events = events
        self.retired: list[int] = []

    @asynccontextmanager
    async def pending(self, limit: int) -> AsyncIterator[list[PendingEvent]]:
        batch = [e for e in self.events if e.id not in self.retired][:limit]
        yield batch
        self.retired.extend(e.id for e in batch)


def _read(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=15_000
    )
    try:
        found = []
        for record in consumer:
            found.append((record.key, record.value))
            if len(found) == count:
                break
        return found
    finally:
        consumer.close()


async def test_pending_events_are_published_in_batches_then_retired(kafka_bootstrap: str) -> None:
    topic = f"meshkit.outbox-{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    events = [PendingEvent(i, topic, f"key-{i % 2}", f"payload-{i}".encode()) for i in range(1, 6)]
    store = ListStore(events)
    published: list[int] = []
    relay = OutboxRelay(
        store,
        lambda: Producer(kafka_bootstrap),
        name="test-relay",
        batch_size=2,
        on_published=published.append,
    )
    try:
        assert await relay.drain() == 5
    finally:
        await relay.stop()
    assert store.retired == [1, 2, 3, 4, 5]
    assert published == [2, 2, 1]
    assert _read(kafka_bootstrap, topic, 5) == [(e.key.encode(), e.payload) for e in events]


async def test_a_failed_publish_leaves_the_events_pending(kafka_bootstrap: str) -> None:
    store = ListStore([PendingEvent(1, "any-topic", "k", b"v")])

    class Broken(Producer):
        async def publish_many_raw(self, topic: str, items: object) -> None:
            raise ConnectionError("the broker is down")

    producer = Broken(kafka_bootstrap)
    try:
        with pytest.raises(ConnectionError):
            await OutboxRelay(store, producer, name="test-relay").drain()
    finally:
        producer.close()
    assert store.retired == []
