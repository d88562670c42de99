"""The outbox relay: publishes ``playback.outbox`` rows to Kafka, then stamps them published.

The counter writes a ``StreamCountedEvent`` row in the same transaction as the count, so an event
exists exactly when the stream does. This relay delivers those rows at least once: a crash
after the broker acknowledged but before the stamp commits republishes them on the next run, and
consumers of ``streams.counted.v1`` deduplicate by ``stream_id``. Rows are read with ``FOR UPDATE
SKIP LOCKED``, so every replica may run a relay without two of them sending the same row at once.

It runs on its own (woken after each counter commit, and every second anyway), so it never sits
on the consumer's path between the database commit and the offset commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from google.protobuf.message import Message
from spotify.playback.v1 import playback_pb2

from meshkit import topics
from meshkit.kafka import Producer
from playback_svc.counter.store import CounterStore
from playback_svc.metrics import OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

# What each outbox topic carries (payloads are parsed back so nothing malformed is ever sent).
MESSAGE_TYPES: dict[str, type[Message]] = {topics.STREAMS_COUNTED.name: playback_pb2.StreamCountedEvent}


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, ``batch_size`` at a time."""

    def __init__(
        self, store: CounterStore, producer: Producer, *, batch_size: int = 500, idle_s: float = 1.0
    ):
        self.store = store
        self.producer = producer
        self.batch_size = batch_size
        self.idle_s = idle_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass soon (call on the relay's event loop)."""
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows it stamped (0 when there was nothing to do)."""
        async with self.store.unpublished(self.batch_size) as batch:
            if not batch.rows:
                return 0
            by_topic: dict[str, list[tuple[str, Message]]] = {}
            for row in batch.rows:
                message_type = MESSAGE_TYPES.get(row.topic)
                if message_type is None:
                    log.error("outbox row %d names an unknown topic %r; leaving it", row.id, row.topic)
                    continue
                key = (row.key or b"").decode()
                by_topic.setdefault(row.topic, []).append((key, message_type.FromString(row.payload)))
            for topic, items in by_topic.items():
                await self.producer.publish_many(topic, items)
            sent = [row.id for row in batch.rows if row.topic in MESSAGE_TYPES]
            await batch.mark_published(sent)
        OUTBOX_PUBLISHED.inc(len(sent))
        return len(sent)

    async def drain(self) -> int:
        """Publish until nothing is left; returns the number of rows published."""
        total = 0
        while (count := await self.publish_once()) > 0:
            total += count
        return total

    async def run(self) -> None:
        """Forever: wait for a wake-up (or ``idle_s``), then drain. Errors are logged and retried."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_s)
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                await asyncio.sleep(self.idle_s)
