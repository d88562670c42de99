"""Catalog change events: built in the write's transaction, relayed to Kafka after it commits.

The write stores its CatalogChangeEvent in catalog.outbox_events in the same transaction as the
change; the relay publishes pending rows (acks=all) and deletes them. A write wakes the relay at
once, and it also sweeps every few seconds, so an event survives a broker outage or a crash
between commit and publish (delivery is at least once; consumers de-duplicate by event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.catalog.v1 import catalog_pb2
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc.models import OutboxEvent
from meshkit import ids
from meshkit.kafka import Producer

log = logging.getLogger(__name__)

TOPIC = "catalog.changes.v1"
BATCH = 200

ENTITY = catalog_pb2.CatalogChangeEvent
CREATED = ENTITY.CHANGE_KIND_CREATED
UPDATED = ENTITY.CHANGE_KIND_UPDATED


def change_event(
    kind: int,
    actor_id: uuid.UUID,
    *,
    track: catalog_pb2.Track | None = None,
    album: catalog_pb2.Album | None = None,
    artist: catalog_pb2.Artist | None = None,
) -> catalog_pb2.CatalogChangeEvent:
    """The event for one changed entity, its snapshot being the object after the change."""
    occurred = Timestamp()
    occurred.GetCurrentTime()
    event = catalog_pb2.CatalogChangeEvent(
        event_id=str(uuid.uuid4()),
        change_kind=kind,
        occurred_at=occurred,
        actor_id=ids.encode(actor_id),
    )
    if track is not None:
        event.entity_type = ENTITY.ENTITY_TYPE_TRACK
        event.id = track.id
        event.track.CopyFrom(track)
    elif album is not None:
        event.entity_type = ENTITY.ENTITY_TYPE_ALBUM
        event.id = album.id
        event.album.CopyFrom(album)
    elif artist is not None:
        event.entity_type = ENTITY.ENTITY_TYPE_ARTIST
        event.id = artist.id
        event.artist.CopyFrom(artist)
    return event


@dataclass(frozen=True)
class _Raw:
    """An already serialised payload, in the shape Producer's serializer expects."""

    payload: bytes

    def SerializeToString(self) -> bytes:  # protobuf's spelling: Producer calls it
        return self.payload


class OutboxRelay:
    """Publishes outbox rows to Kafka: on `kick()` after a commit, and every `interval_s` anyway."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer_factory: Callable[[], Producer],
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.sessions = sessions
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
        async with self.sessions() as session, session.begin():
            # SKIP LOCKED: replicas relaying at once split the rows instead of waiting on each other.
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, OutboxEvent.payload)
                    .order_by(OutboxEvent.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            producer = await self._get_producer()
            by_topic: dict[str, list[tuple[str, _Raw]]] = {}
            for row in rows:
                by_topic.setdefault(row.topic, []).append((row.key, _Raw(row.payload)))
            for topic, items in by_topic.items():
                await producer.publish_many(topic, items)  # type: ignore[arg-type]
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows])))
            return len(rows)

    async def _get_producer(self) -> Producer:
        if self._producer is None:
            # Connecting blocks (bootstrap, API version probe): keep it off the event loop.
            self._producer = await asyncio.to_thread(self.producer_factory)
        return self._producer
