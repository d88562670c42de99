"""SQL for listening history: one user's plays from ``playback.listening_history``, by time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_

from meshkit.db import SqlStore
from playback_svc.models import ListeningHistory


@dataclass(frozen=True)
class PlayRow:
    id: int
    track_id: uuid.UUID
    played_at: datetime
    context_uri: str | None


class HistoryStore(SqlStore):
    async def plays(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        older_than: tuple[datetime, int] | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> tuple[list[PlayRow], int]:
        """Up to ``limit`` plays and the user's total: newest first, or oldest first after ``after``.

        At most one bound is given: ``older_than`` is an exact position (a play's time and id);
        ``before`` and ``after`` compare at millisecond precision, as the client's cursors do.
        """
        played_ms = func.date_trunc("milliseconds", ListeningHistory.played_at)
        query = select(ListeningHistory).where(ListeningHistory.user_id == user_id)
        if older_than is not None:
            query = query.where(tuple_(ListeningHistory.played_at, ListeningHistory.id) < tuple_(*older_than))
        elif before is not None:
            query = query.where(played_ms < before)
        elif after is not None:
            query = query.where(played_ms > after)
        if after is not None:
            query = query.order_by(ListeningHistory.played_at, ListeningHistory.id)
        else:
            query = query.order_by(ListeningHistory.played_at.desc(), ListeningHistory.id.desc())
        async with self.sessions() as session:
            # One snapshot for both statements: under READ COMMITTED a play committed between them
            # was counted in `total` but missing from the page (a total of 1 beside no items).
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            found = (await session.scalars(query.limit(limit))).all()
            total = await session.scalar(
                select(func.count()).select_from(ListeningHistory).where(ListeningHistory.user_id == user_id)
            )
        rows = [PlayRow(row.id, row.track_id, row.played_at, row.context_uri) for row in found]
        return rows, int(total or 0)
