"""The stream-count projection: streams.counted.v1 -> tracks.stream_count and artist_listeners.

playback_svc publishes one StreamCountedEvent per counted stream. Applying a batch is one
transaction: insert the stream ids into applied_stream_events (ON CONFLICT DO NOTHING), and for
the rows that were actually inserted, and only those, add to tracks.stream_count and upsert
(artist, listener, last streamed). The consumer loop commits Kafka offsets only after that
transaction committed, so a redelivered or replayed event finds its stream id already there and
changes nothing: the effect is exactly once. Monthly listeners and popularity are derived from
these tables by the batch job (`recompute`, run by catalog_svc.jobs), never per request.

Runs on the consumer's own thread (kafka-python is thread-based), over a synchronous store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from spotify.playback.v1 import playback_pb2
from sqlalchemy.exc import SQLAlchemyError

from catalog_svc.stream_store import CountedStream, ProjectionStats, StreamStore
from meshkit import ids
from meshkit.errors import InvalidArgument

log = logging.getLogger(__name__)

# Monthly listeners count the users who streamed an artist in this many days.
WINDOW_DAYS = 28


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
    """Applies counted streams to the catalog; `handle` takes a polled batch (on a worker thread)."""

    def __init__(self, store: StreamStore, *, retry_s: float = 1.0) -> None:
        self.store = store
        self.retry_s = retry_s
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a handler stuck retrying a database error give up (its offsets stay uncommitted)."""
        self._stopping.set()

    def apply(self, streams: Sequence[CountedStream]) -> int:
        """Apply `streams` in one transaction; returns how many were new (the rest were replays)."""
        return self.store.apply(streams)

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


# The streams.counted topic's retention (k8s/overlays/prod/kafka.yaml) plus a day.
PURGE_AFTER_DAYS = 8


def recompute(
    store: StreamStore, *, now: dt.datetime | None = None, window_days: int = WINDOW_DAYS
) -> ProjectionStats:
    """Monthly listeners over the last `window_days`, then popularity (see catalog_svc.jobs)."""
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=window_days)
    stats = store.recompute(since)
    # The table doubles as the popularity window: rows a day past it, once past the topic's
    # retention, count for nothing any more.
    purged = store.purge_applied(counted_before=since - dt.timedelta(days=1), applied_days=PURGE_AFTER_DAYS)
    stats = dataclasses.replace(stats, stream_events_purged=purged)
    log.info("projection recomputed", extra={"window_days": window_days, **stats.__dict__})
    return stats
