"""The stream-count projection: streams.counted.v1 -> tracks.stream_count and artist_listeners.

playback_svc publishes one StreamCountedEvent per counted stream. Applying a batch is one
transaction: insert the stream ids into applied_stream_events (ON CONFLICT DO NOTHING), and for
the rows that were actually inserted, and only those, add to tracks.stream_count and upsert
(artist, listener, last streamed). The consumer loop commits Kafka offsets only after that
transaction committed, so a redelivered or replayed event finds its stream id already there and
changes nothing: the effect is exactly once. Monthly listeners and popularity are derived from
these tables by the batch job in catalog_svc.jobs, never per request.

Runs on the consumer's own thread with a synchronous engine (kafka-python is thread-based).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from spotify.playback.v1 import playback_pb2
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from meshkit import ids
from meshkit.errors import InvalidArgument

log = logging.getLogger(__name__)

TOPIC = "streams.counted.v1"
DEFAULT_GROUP = "catalog_svc.stream-counts"

_APPLY = text(
    """
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:stream_ids AS uuid[]), CAST(:track_ids AS uuid[]),
            CAST(:user_ids AS uuid[]), CAST(:counted_at AS timestamptz[])
        ) AS e(stream_id, track_id, user_id, counted_at)
    ),
    inserted AS (
        INSERT INTO catalog.applied_stream_events (stream_id, track_id, counted_at)
        SELECT stream_id, track_id, counted_at FROM incoming
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING stream_id
    ),
    fresh AS (
        SELECT e.* FROM incoming e JOIN inserted i USING (stream_id)
    ),
    counted AS (
        UPDATE catalog.tracks t SET stream_count = t.stream_count + f.n
        FROM (SELECT track_id, count(*) AS n FROM fresh GROUP BY track_id) f
        WHERE t.id = f.track_id
        RETURNING t.id
    ),
    credited AS (
        SELECT ta.artist_id, f.user_id, f.counted_at
        FROM fresh f JOIN catalog.track_artists ta ON ta.track_id = f.track_id
        UNION ALL
        SELECT al.artist_id, f.user_id, f.counted_at
        FROM fresh f
        JOIN catalog.tracks t ON t.id = f.track_id
        JOIN catalog.albums al ON al.id = t.album_id
        WHERE NOT EXISTS (SELECT 1 FROM catalog.track_artists x WHERE x.track_id = f.track_id)
    ),
    listened AS (
        INSERT INTO catalog.artist_listeners (artist_id, user_id, last_streamed_at)
        SELECT artist_id, user_id, max(counted_at) FROM credited GROUP BY artist_id, user_id
        ON CONFLICT (artist_id, user_id) DO UPDATE
        SET last_streamed_at = greatest(catalog.artist_listeners.last_streamed_at, EXCLUDED.last_streamed_at)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted) AS applied
    """
)


@dataclass(frozen=True)
class CountedStream:
    """What the projection needs from one StreamCountedEvent."""

    stream_id: uuid.UUID
    track_id: uuid.UUID
    user_id: uuid.UUID
    counted_at: dt.datetime


def parse_event(event: playback_pb2.StreamCountedEvent) -> CountedStream:
    """The event's ids decoded; INVALID_ARGUMENT (a poison message) when one is malformed.

    stream_id is a base62 id or a UUID string (playback's choice is not fixed by the contract).
    """
    counted_at = (
        event.counted_at.ToDatetime(tzinfo=dt.UTC)
        if event.HasField("counted_at")
        else dt.datetime.now(dt.UTC)
    )
    return CountedStream(
        stream_id=_any_id(event.stream_id, "stream id"),
        track_id=ids.parse_id_or_uri(event.track_id, "track"),
        user_id=ids.parse_id_or_uri(event.user_id, "user"),
        counted_at=counted_at,
    )


def _any_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return ids.decode(value, what=what)


class StreamCountProjection:
    """Applies counted streams to the catalog; `handle` is the ConsumerLoop callback."""

    def __init__(self, engine: Engine, *, retry_s: float = 1.0) -> None:
        self.engine = engine
        self.retry_s = retry_s
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a handler stuck retrying a database error give up (its offsets stay uncommitted)."""
        self._stopping.set()

    def apply(self, streams: Sequence[CountedStream]) -> int:
        """Apply `streams` in one transaction; returns how many were new (the rest were replays)."""
        unique = list({s.stream_id: s for s in reversed(streams)}.values())[::-1]  # first of each id
        if not unique:
            return 0
        params: dict[str, Any] = {
            "stream_ids": [s.stream_id for s in unique],
            "track_ids": [s.track_id for s in unique],
            "user_ids": [s.user_id for s in unique],
            "counted_at": [s.counted_at for s in unique],
        }
        with self.engine.begin() as conn:
            return int(conn.execute(_APPLY, params).scalar_one())

    def handle(self, records: Iterable[Any]) -> None:
        """Decode a polled batch and apply it, retrying database errors until it succeeds.

        Malformed events are logged and skipped (retrying cannot fix them). A database error is
        retried rather than skipped, since skipping would commit offsets for uncounted streams.
        """
        streams = []
        for record in records:
            try:
                streams.append(parse_event(playback_pb2.StreamCountedEvent.FromString(record.value)))
            except (DecodeError, InvalidArgument, ValueError) as exc:
                log.warning(
                    "skipping a malformed stream-counted event",
                    extra={"partition": record.partition, "offset": record.offset, "error": str(exc)},
                )
        while True:
            try:
                applied = self.apply(streams)
                log.debug("applied counted streams", extra={"applied": applied, "received": len(streams)})
                return
            except SQLAlchemyError:
                if self._stopping.is_set():
                    raise
                log.warning("could not apply counted streams; retrying", exc_info=True)
                time.sleep(self.retry_s)
