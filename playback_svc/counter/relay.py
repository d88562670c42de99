"""The outbox relay: publishes ``playback.outbox`` rows to Kafka, then stamps them published.

The counter writes a ``StreamCountedEvent`` row in the same transaction as the count, so an event
exists exactly when the stream does. This relay delivers those rows at least once: a crash
after the broker acknowledged but before the stamp commits republishes them on the next run, and
consumers of ``streams.counted.v1`` deduplicate by ``stream_id``. ``FOR UPDATE SKIP LOCKED``
lets every replica run a relay without two of them sending the same row at the same time.

It runs on its own (woken after each counter commit, and every second anyway), so it never sits
on the consumer's path between the database commit and the offset commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from google.protobuf.message import Message
from spotify.playback.v1 import playback_pb2
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit.kafka import Producer
from playback_svc.config import COUNTED_TOPIC
from playback_svc.metrics import OUTBOX_PUBLISHED
from playback_svc.models import OutboxEvent

log = logging.getLogger(__name__)

# What each outbox topic carries (payloads are parsed back so nothing malformed is ever sent).
MESSAGE_TYPES: dict[str, type[Message]] = {COUNTED_TOPIC: playback_pb2.StreamCountedEvent}


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, ``batch_size`` at a time."""

    def __init__(
        self, engine: AsyncEngine, producer: Producer, *, batch_size: int = 500, idle_s: float = 1.0
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.batch_size = batch_size
        self.idle_s = idle_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass soon (call on the relay's event loop)."""
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows it stamped (0 when there was nothing to do)."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, OutboxEvent.payload)
                    .where(OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            by_topic: dict[str, list[tuple[str, Message]]] = {}
            for row in rows:
                message_type = MESSAGE_TYPES.get(row.topic)
                if message_type is None:
                    log.error("outbox row %d names an unknown topic %r; leaving it", row.id, row.topic)
                    continue
                key = (row.key or b"").decode()
                by_topic.setdefault(row.topic, []).append((key, message_type.FromString(row.payload)))
            for topic, items in by_topic.items():
                await self.producer.publish_many(topic, items)
            sent = [row.id for row in rows if row.topic in MESSAGE_TYPES]
            await conn.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(sent)).values(published_at=func.now())
            )
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
