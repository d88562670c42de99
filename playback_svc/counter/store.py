"""The counter's one transaction per batch (ARCHITECTURE decision 6).

``counted_streams.idempotency_key`` is unique: the insert uses ``ON CONFLICT DO NOTHING
RETURNING``, and only the rows that come back (sessions counted for the first time, ever) get
their track count, history row, royalty rows and outbox event, all in the caller's transaction.
A replayed batch therefore inserts nothing and changes nothing, whatever Redis remembers.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2
from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from meshkit import ids
from playback_svc.config import COUNTED_TOPIC
from playback_svc.counter.batch import Qualified
from playback_svc.models import (
    CountedStream,
    ListeningHistory,
    OutboxEvent,
    RoyaltyAttribution,
    TrackStreamCount,
)

_EventType = playback_pb2.PlaybackEvent.EventType
_WEIGHT_STEP = Decimal("0.000001")  # royalty_attributions.weight is NUMERIC(9, 6)


@dataclass(frozen=True)
class Counted:
    """A session counted by this transaction, and the event announcing it."""

    qualified: Qualified
    stream_id: uuid.UUID
    message: playback_pb2.StreamCountedEvent


def split_weights(count: int) -> list[Decimal]:
    """``count`` weights of 1/count at NUMERIC(9, 6) precision that sum to exactly 1.

    The rounding remainder goes to the first (primary) artist, so a report that sums weights
    never loses or invents a fraction of a stream.
    """
    if count <= 0:
        return []
    share = (Decimal(1) / count).quantize(_WEIGHT_STEP, rounding=ROUND_DOWN)
    return [Decimal(1) - share * (count - 1), *([share] * (count - 1))]


def _event_uuid(event_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=event_id)
    except ValueError:
        return None


def _message(q: Qualified, stream_id: uuid.UUID) -> playback_pb2.StreamCountedEvent:
    counted_at = Timestamp()
    counted_at.FromDatetime(q.counted_at)
    return playback_pb2.StreamCountedEvent(
        stream_id=ids.encode(stream_id),
        idempotency_key=q.key,
        user_id=q.event.user_id,
        track_id=q.event.track_id,
        artist_ids=[ids.encode(a) for a in q.artist_ids],
        product=q.event.product,
        country=q.event.country,
        counted_at=counted_at,
        played_ms=q.event.position_ms,
    )


def _product(value: str) -> str:
    return value if value in ("free", "premium") else "free"


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
    .returning(_COUNTED.c.idempotency_key, _COUNTED.c.id)
)
_upsert = insert(_COUNTS)
_UPSERT_COUNTS = _upsert.on_conflict_do_update(
    index_elements=["track_id"],
    set_={"stream_count": _COUNTS.c.stream_count + _upsert.excluded.stream_count, "updated_at": func.now()},
)
_INSERT_HISTORY = insert(_HISTORY).on_conflict_do_nothing(index_elements=["event_id"])
_INSERT_ROYALTIES = insert(_ROYALTIES)
_INSERT_OUTBOX = insert(_OUTBOX)


async def write_batch(conn: AsyncConnection, qualified: list[Qualified]) -> list[Counted]:
    """Count the sessions not counted before; the caller owns (and commits) the transaction.

    Rows go in sorted by key and by track so two counters working on overlapping batches (a
    rebalance hand-over) take their locks in the same order and cannot deadlock.
    """
    if not qualified:
        return []
    ordered = sorted(qualified, key=lambda q: q.key)
    inserted = await conn.execute(
        _INSERT_COUNTED,
        [
            {
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
    new_ids: dict[str, uuid.UUID] = {row.idempotency_key: row.id for row in inserted}
    counted = [Counted(q, new_ids[q.key], _message(q, new_ids[q.key])) for q in ordered if q.key in new_ids]
    if not counted:
        return []

    per_track = Counter(c.qualified.track_id for c in counted)
    await conn.execute(
        _UPSERT_COUNTS, [{"track_id": track, "stream_count": n} for track, n in sorted(per_track.items())]
    )
    await conn.execute(
        _INSERT_HISTORY,
        [
            {
                "event_id": _event_uuid(c.qualified.event.event_id),
                "user_id": c.qualified.user_id,
                "track_id": c.qualified.track_id,
                "played_at": c.qualified.counted_at,
                "ms_played": c.qualified.event.position_ms,
                "completed": c.qualified.event.event_type == _EventType.EVENT_TYPE_COMPLETE,
                "skipped": c.qualified.event.event_type == _EventType.EVENT_TYPE_SKIP,
                "device_type": c.qualified.event.device_type[:32] or None,
                "context_uri": c.qualified.event.context_uri or None,
                "stream_id": c.stream_id,
            }
            for c in counted
        ],
    )
    royalties = [
        {
            "stream_id": c.stream_id,
            "track_id": c.qualified.track_id,
            "artist_id": artist_id,
            "user_id": c.qualified.user_id,
            "product": _product(c.qualified.event.product),
            "country": c.qualified.event.country or None,
            "counted_at": c.qualified.counted_at,
            "weight": weight,
        }
        for c in counted
        for artist_id, weight in zip(
            c.qualified.artist_ids, split_weights(len(c.qualified.artist_ids)), strict=True
        )
    ]
    if royalties:
        await conn.execute(_INSERT_ROYALTIES, royalties)
    await conn.execute(
        _INSERT_OUTBOX,
        [
            {
                "topic": COUNTED_TOPIC,
                "key": c.qualified.event.track_id.encode(),
                "payload": c.message.SerializeToString(),
            }
            for c in counted
        ],
    )
    return counted
