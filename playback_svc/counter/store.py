"""SQL of the stream counter: the one transaction per batch, and the outbox the relay drains.

``counted_streams.idempotency_key`` is unique: the insert uses ``ON CONFLICT DO NOTHING
RETURNING``, and only the sessions that come back (counted for the first time, ever) get their
track count, history row, royalty rows and outbox event, all in the same transaction. A replayed
batch therefore inserts nothing and changes nothing, whatever Redis remembers.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

from spotify.playback.v1 import playback_pb2
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from meshkit import tombstones, topics
from meshkit.outbox import PendingEvent
from playback_svc.counter.batch import Qualified
from playback_svc.models import (
    CountedStream,
    ErasedUser,
    ListeningHistory,
    OutboxEvent,
    RoyaltyAttribution,
    TrackStreamCount,
)

_EventType = playback_pb2.PlaybackEvent.EventType


def _product(value: str) -> str:
    return value if value in ("free", "premium") else "free"


def _event_uuid(event_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=event_id)
    except ValueError:
        return None


_COUNTED = cast(Table, CountedStream.__table__)
_COUNTS = cast(Table, TrackStreamCount.__table__)
_HISTORY = cast(Table, ListeningHistory.__table__)
_ROYALTIES = cast(Table, RoyaltyAttribution.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)

# Statements built once: executed with a list of parameter sets ("executemany"), SQLAlchemy sends
# them as batched multi-row INSERTs from one cached compilation, instead of compiling a new
# statement with hundreds of literal rows for every batch.
_INSERT_COUNTED = (
    insert(_COUNTED)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_COUNTED.c.idempotency_key)
)
_upsert = insert(_COUNTS)
_UPSERT_COUNTS = _upsert.on_conflict_do_update(
    index_elements=["track_id"],
    set_={"stream_count": _COUNTS.c.stream_count + _upsert.excluded.stream_count, "updated_at": func.now()},
)
_INSERT_HISTORY = insert(_HISTORY).on_conflict_do_nothing(index_elements=["event_id"])
_INSERT_ROYALTIES = insert(_ROYALTIES)
_INSERT_OUTBOX = insert(_OUTBOX)


@dataclass(frozen=True)
class Written:
    """A batch's outcome: the sessions counted now, and the erased users whose were left out."""

    counted: list[Qualified]
    erased: frozenset[uuid.UUID] = frozenset()


class CounterStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write_batch(self, qualified: list[Qualified]) -> Written:
        """Count the sessions not counted before, in one transaction; returns those it counted.

        Sessions of users erased since they played (meshkit.tombstones) are left out: a deleted
        account's late plays are neither counted nor remembered. Rows go in sorted by key and by
        track so two counters working on overlapping batches (a rebalance hand-over) take their
        locks in the same order and cannot deadlock.
        """
        if not qualified:
            return Written([])
        async with self.engine.begin() as conn:
            erased = frozenset(await tombstones.erased(conn, ErasedUser, {q.user_id for q in qualified}))
            ordered = sorted((q for q in qualified if q.user_id not in erased), key=lambda q: q.key)
            if not ordered:
                return Written([], erased)
            inserted = await conn.execute(
                _INSERT_COUNTED,
                [
                    {
                        "id": q.stream_id,
                        "idempotency_key": q.key,
                        "user_id": q.user_id,
                        "track_id": q.track_id,
                        "counted_at": q.counted_at,
                        "product": _product(q.event.product),
                        "country": q.event.country or None,
                        "position_ms": q.event.position_ms,
                    }
                    for q in ordered
                ],
            )
            new_keys = {row.idempotency_key for row in inserted}
            counted = [q for q in ordered if q.key in new_keys]
            if counted:
                await _record(conn, counted)
        return Written(counted, erased)

    @asynccontextmanager
    async def pending(self, limit: int) -> AsyncIterator[list[PendingEvent]]:
        """The oldest unpublished outbox rows no other relay holds, locked; stamped published when
        the block ends normally (meshkit.outbox)."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, OutboxEvent.payload)
                    .where(OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            events = [PendingEvent(r.id, r.topic, (r.key or b"").decode(), r.payload) for r in rows]
            yield events
            if events:
                await conn.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_([e.id for e in events]))
                    .values(published_at=func.now())
                )


async def _record(conn: AsyncConnection, counted: list[Qualified]) -> None:
    """Everything a newly counted session causes: its track's count, history, royalties, event."""
    per_track = Counter(q.track_id for q in counted)
    await conn.execute(
        _UPSERT_COUNTS, [{"track_id": track, "stream_count": n} for track, n in sorted(per_track.items())]
    )
    await conn.execute(
        _INSERT_HISTORY,
        [
            {
                "event_id": _event_uuid(q.event.event_id),
                "user_id": q.user_id,
                "track_id": q.track_id,
                "played_at": q.counted_at,
                "ms_played": q.event.position_ms,
                "completed": q.event.event_type == _EventType.EVENT_TYPE_COMPLETE,
                "skipped": q.event.event_type == _EventType.EVENT_TYPE_SKIP,
                "device_type": q.event.device_type[:32] or None,
                "context_uri": q.event.context_uri or None,
                "stream_id": q.stream_id,
            }
            for q in counted
        ],
    )
    royalties = [
        {
            "stream_id": q.stream_id,
            "track_id": q.track_id,
            "artist_id": artist_id,
            "user_id": q.user_id,
            "product": _product(q.event.product),
            "country": q.event.country or None,
            "counted_at": q.counted_at,
            "weight": weight,
        }
        for q in counted
        for artist_id, weight in zip(q.artist_ids, q.weights, strict=True)
    ]
    if royalties:
        await conn.execute(_INSERT_ROYALTIES, royalties)
    await conn.execute(
        _INSERT_OUTBOX,
        [
            {
                "topic": topics.STREAMS_COUNTED.name,
                "key": q.event.track_id.encode(),
                "payload": q.announcement.SerializeToString(),
            }
            for q in counted
        ],
    )


async def purge_published_outbox(engine: AsyncEngine, *, days: int) -> int:
    """Delete outbox rows published more than `days` ago (the relay stamps `published_at`; the
    unpublished ones are never touched). Returns how many went."""
    async with engine.begin() as conn:
        result = await conn.execute(
            _OUTBOX.delete().where(
                OutboxEvent.published_at.is_not(None),
                OutboxEvent.published_at < func.now() - func.make_interval(0, 0, 0, days),
            )
        )
    return int(result.rowcount)
