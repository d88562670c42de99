"""SQL of the change-event outbox (relayed by meshkit.outbox): pending events, deleted once published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, select

from catalog_svc.models import OutboxEvent
from meshkit.db import SqlStore
from meshkit.outbox import PendingEvent


class OutboxStore(SqlStore):
    @asynccontextmanager
    async def pending(self, limit: int) -> AsyncIterator[list[PendingEvent]]:
        """The oldest `limit` pending events, locked; deleted when the block ends normally.

        SKIP LOCKED: replicas relaying at once split the rows instead of waiting on each other.
        An error in the block rolls back, and the events stay pending.
        """
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, OutboxEvent.payload)
                    .order_by(OutboxEvent.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            events = [PendingEvent(*row) for row in rows]
            yield events
            if events:
                await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])))
