"""rec's consumer group: counted streams into rec.listens, catalog changes into the live index.

Effects are exactly-once: a counted stream's id is the primary key of rec.listens, and a
catalog change's event id is claimed in rec.events_applied in the same transaction as its
write. Offsets are committed (by meshkit's ConsumerLoop) only after the batch was applied; a
database outage blocks the consumer with retries instead of skipping events. Records that
cannot be decoded are logged and skipped, so one bad message cannot wedge the group.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from google.protobuf.message import DecodeError
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument
from meshkit.kafka import ConsumerConfig, ConsumerLoop
from rec_svc.catalog import CatalogClient, meta_of
from rec_svc.index import IndexHolder
from rec_svc.inputs import row_from_meta
from rec_svc.model.types import TrackMeta
from rec_svc.store import RecStore

log = logging.getLogger(__name__)

STREAMS_TOPIC = "streams.counted.v1"
CHANGES_TOPIC = "catalog.changes.v1"
TRACK = catalog_pb2.CatalogChangeEvent.ENTITY_TYPE_TRACK
DELETED = catalog_pb2.CatalogChangeEvent.CHANGE_KIND_DELETED


class EventApplier:
    """Applies polled records; runs on the service's event loop."""

    def __init__(self, store: RecStore, catalog: CatalogClient, holder: IndexHolder) -> None:
        self.store = store
        self.catalog = catalog
        self.holder = holder

    async def apply(self, records: Sequence[Any]) -> None:
        streams = [r for r in records if r.topic == STREAMS_TOPIC]
        changes = [r for r in records if r.topic == CHANGES_TOPIC]
        if streams:
            await self.apply_streams([r.value for r in streams])
        for record in changes:
            await self.apply_change(record.value)

    async def apply_streams(self, values: Sequence[bytes]) -> int:
        """Insert the counted streams; returns how many were new."""
        rows: dict[str, dict[str, Any]] = {}
        for value in values:
            try:
                event = playback_pb2.StreamCountedEvent.FromString(value)
                if not event.stream_id:
                    raise InvalidArgument("stream_id is empty")
                rows[event.stream_id] = {
                    "stream_id": event.stream_id,
                    "user_id": ids.decode(event.user_id),
                    "track_id": ids.decode(event.track_id),
                    "artist_ids": [ids.decode(a) for a in event.artist_ids],
                    "counted_at": event.counted_at.ToDatetime(tzinfo=UTC),
                    "played_ms": event.played_ms,
                    "weight": 1.0,  # a counted stream is a completed (>= 30 s) play
                }
            except (DecodeError, InvalidArgument, ValueError) as err:
                log.warning("skipping an undecodable %s record: %s", STREAMS_TOPIC, err)
        return await self.store.add_listens(list(rows.values()))

    async def apply_change(self, value: bytes) -> None:
        try:
            event = catalog_pb2.CatalogChangeEvent.FromString(value)
            if event.entity_type != TRACK:
                return  # artist and album changes reach the model at the next build
            track_id = ids.decode(event.id)
        except (DecodeError, InvalidArgument) as err:
            log.warning("skipping an undecodable %s record: %s", CHANGES_TOPIC, err)
            return
        claim = (event.event_id, CHANGES_TOPIC) if event.event_id else None
        if event.change_kind == DELETED:
            await self.store.mark_deleted([track_id], event=claim)
            self.holder.delete_track(track_id)
            return
        meta = await self._meta(event.track, track_id) if event.HasField("track") else None
        if meta is None:
            return
        await self.store.upsert_tracks([row_from_meta(meta)], event=claim)
        # In memory it is idempotent, so a redelivered event still reaches a freshly started process.
        self.holder.add_tracks([meta])

    async def _meta(self, track: catalog_pb2.Track, track_id: Any) -> TrackMeta:
        """The track's facts: its snapshot, plus its artists' genres and its audio features when available."""
        artist_ids = [ids.decode(a.id) for a in track.artists if a.id]
        try:
            artists = await self.catalog.artists(artist_ids) if artist_ids else {}
            features = (await self.catalog.audio_features([track_id])).get(track_id)
        except Exception as err:  # the catalog being down must not stop the stream of changes
            log.warning("catalog unavailable for %s, adding it without genres/features: %s", track.id, err)
            artists, features = {}, None
        return meta_of(track, artists, features)


class RecConsumer:
    """The consumer group thread, handing each batch to the event loop and waiting for it."""

    RETRY_MAX_S = 30.0

    def __init__(
        self, bootstrap: str, group: str, applier: EventApplier, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.applier = applier
        self.loop = loop
        self._stopping = threading.Event()
        self.consumer = ConsumerLoop(
            ConsumerConfig(bootstrap, group, (STREAMS_TOPIC, CHANGES_TOPIC)), self._handle
        )

    def start(self) -> None:
        self.consumer.start()

    def stop(self) -> None:
        self._stopping.set()
        self.consumer.stop()

    def _handle(self, records: list) -> None:
        delay = 0.5
        while True:
            future = asyncio.run_coroutine_threadsafe(self.applier.apply(records), self.loop)
            try:
                future.result()
                return
            except Exception:
                if self._stopping.is_set():
                    raise
                log.exception("applying %d records failed; retrying in %.1fs", len(records), delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.RETRY_MAX_S)
