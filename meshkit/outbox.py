"""The transactional outbox's relay: events written with a change, published after it commits.

A service writes an event row in the same transaction as the change it describes, so the event
exists exactly when the change does. This relay publishes pending rows (acks=all) and then has
the store retire them (delete or stamp, the store's choice) in the transaction that locked them:
a crash between the broker's acknowledgement and that commit publishes them again, so delivery is
at least once and consumers de-duplicate by the event's own id. Rows are read with `FOR UPDATE SKIP
LOCKED`, so every replica may run a relay without two of them sending the same row at once.

A writer wakes the relay right after its commit (`kick`); it also sweeps every `interval_s`, so an
event survives a broker outage or a crash between commit and publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meshkit.db import SqlStore
from meshkit.kafka import Producer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """One outbox row: its topic, partition key and serialised protobuf payload."""

    id: int
    topic: str
    key: str
    payload: bytes


class OutboxStore(Protocol):
    def pending(self, limit: int) -> AbstractAsyncContextManager[list[PendingEvent]]:
        """The oldest `limit` pending events, locked; retired when the block ends normally and left
        pending when it raises."""
        ...


class DeletingOutboxStore(SqlStore):
    """An outbox table whose rows are deleted once published (catalog's and auth's).

    `table` is the service's mapped class with `id` (ordered), `topic`, `key` and `payload`.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], table: Any) -> None:
        super().__init__(sessions)
        self.table = table

    @asynccontextmanager
    async def pending(self, limit: int) -> AsyncIterator[list[PendingEvent]]:
        """The oldest `limit` pending events, locked; deleted when the block ends normally.

        SKIP LOCKED: replicas relaying at once split the rows instead of waiting on each other.
        An error in the block rolls back, and the events stay pending.
        """
        table = self.table
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(table.id, table.topic, table.key, table.payload)
                    .order_by(table.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            events = [PendingEvent(row.id, row.topic, row.key, row.payload) for row in rows]
            yield events
            if events:
                await session.execute(delete(table).where(table.id.in_([e.id for e in events])))


class OutboxRelay:
    """Publishes a store's pending events: on `kick()` after a commit, and every `interval_s` anyway."""

    def __init__(
        self,
        store: OutboxStore,
        producer: Producer | Callable[[], Producer],
        *,
        name: str,
        batch_size: int = 200,
        interval_s: float = 5.0,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        # A producer handed in is borrowed (its owner closes it); one the relay makes is its own,
        # made on first use (connecting blocks), and closed by `stop`.
        self._borrowed = producer if isinstance(producer, Producer) else None
        self._factory = None if isinstance(producer, Producer) else producer
        self._producer: Producer | None = self._borrowed
        self.name = name
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.on_published = on_published
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Publish soon: called on the relay's event loop after a write committed."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop sweeping, give what is pending a last chance (5 s), and close the producer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)
        if self._producer is not None and self._borrowed is None:
            await asyncio.to_thread(self._producer.close)
            self._producer = None

    async def drain(self) -> int:
        """Publish everything pending, oldest first; returns how many events went out."""
        sent = 0
        while True:
            count = await self.publish_batch()
            sent += count
            if count < self.batch_size:
                return sent

    async def publish_batch(self) -> int:
        """Publish one batch of pending events; returns its size (0 when nothing was pending)."""
        async with self.store.pending(self.batch_size) as events:
            if not events:
                return 0
            producer = await self._get_producer()
            by_topic: dict[str, list[tuple[str, bytes]]] = {}
            for event in events:
                by_topic.setdefault(event.topic, []).append((event.key, event.payload))
            for topic, items in by_topic.items():
                await producer.publish_many_raw(topic, items)
        if self.on_published is not None:
            self.on_published(len(events))
        return len(events)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.warning("outbox relay %s could not publish; retrying", self.name, exc_info=True)

    async def _get_producer(self) -> Producer:
        if self._producer is None:
            assert self._factory is not None
            # Connecting blocks (bootstrap, API version probe): keep it off the event loop.
            self._producer = await asyncio.to_thread(self._factory)
        return self._producer
