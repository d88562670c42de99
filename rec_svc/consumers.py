"""rec's consumer group: counted streams into rec.listens, skips into rec.skips, catalog changes
into the live index.

Effects are exactly-once: a counted stream's id is the primary key of rec.listens, a skip's
user and session idempotency key are the primary key of rec.skips, and a catalog change's
event id is claimed in rec.events_applied in the same transaction as its write. Offsets are
committed (by meshkit's ConsumerLoop) only after the batch was applied; a database outage
blocks the consumer with retries instead of skipping events. Records that cannot be decoded
(or that PostgreSQL would refuse) are logged and skipped, so one bad message cannot wedge the
group. Of `playback.events.v1`, rec keeps only the skips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2

from meshkit import ids, topics
from meshkit.errors import InvalidArgument
from meshkit.kafka import AsyncConsumer, ConsumerConfig
from rec_svc.clients import Catalog, meta_of
from rec_svc.holder import IndexHolder
from rec_svc.model.types import TrackMeta
from rec_svc.store import RecStore

log = logging.getLogger(__name__)

STREAMS_TOPIC = topics.STREAMS_COUNTED.name
CHANGES_TOPIC = topics.CATALOG_CHANGES.name
PLAYBACK_TOPIC = topics.PLAYBACK_EVENTS.name
TOPICS = (STREAMS_TOPIC, CHANGES_TOPIC, PLAYBACK_TOPIC)
SKIP = playback_pb2.PlaybackEvent.EVENT_TYPE_SKIP
# A skip's completion weight, whatever its position: the model scales skips by `skip_scale`
# (the offline evaluation's world skips with the same -1). A skip after the play already
# counted as a stream nets out positive against that counted stream's +1.
SKIP_WEIGHT = -1.0
TRACK = catalog_pb2.CatalogChangeEvent.ENTITY_TYPE_TRACK
DELETED = catalog_pb2.CatalogChangeEvent.CHANGE_KIND_DELETED


@dataclass(frozen=True)
class EventApplier:
    """Applies polled records; runs on the service's event loop."""

    store: RecStore
    catalog: Catalog
    holder: IndexHolder

    async def apply(self, records: Sequence[Any]) -> None:
        streams = [r for r in records if r.topic == STREAMS_TOPIC]
        playback = [r for r in records if r.topic == PLAYBACK_TOPIC]
        changes = [r for r in records if r.topic == CHANGES_TOPIC]
        if streams:
            await self.apply_streams([r.value for r in streams])
        if playback:
            await self.apply_skips([r.value for r in playback])
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

    async def apply_skips(self, values: Sequence[bytes]) -> int:
        """Record the skips among playback events (other types are not rec's); returns how many were new.

        A session skips at most once: the first skip of a (user, idempotency key) wins, here and
        in the table, so a replayed record or a client's retried skip changes nothing.
        """
        rows: dict[tuple[Any, str], dict[str, Any]] = {}
        for value in values:
            try:
                event = playback_pb2.PlaybackEvent.FromString(value)
                if event.event_type != SKIP:
                    continue
                if not event.idempotency_key or "\x00" in event.idempotency_key:
                    raise InvalidArgument("idempotency_key is empty or holds a NUL character")
                if event.position_ms < 0:
                    raise InvalidArgument(f"position_ms is negative ({event.position_ms})")
                user_id = ids.decode(event.user_id, what="user_id")
                row = {
                    "user_id": user_id,
                    "idempotency_key": event.idempotency_key,
                    "track_id": ids.decode(event.track_id, what="track_id"),
                    "skipped_at": _received_at(event),
                    "position_ms": event.position_ms,
                    "track_duration_ms": max(event.track_duration_ms, 0),
                    "weight": SKIP_WEIGHT,
                }
            except (DecodeError, InvalidArgument, ValueError, OverflowError) as err:
                log.warning("skipping an invalid %s record: %s", PLAYBACK_TOPIC, err)
                continue
            rows.setdefault((user_id, event.idempotency_key), row)
        return await self.store.add_skips(list(rows.values()))

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
        await self.store.upsert_tracks([meta], event=claim)
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


def _received_at(event: playback_pb2.PlaybackEvent) -> datetime:
    """The server's receive time: trusted (unlike the client's clock) and the same on every replay."""
    if event.HasField("received_at"):
        return event.received_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


def consumer_group(bootstrap: str, group: str, applier: EventApplier) -> AsyncConsumer:
    """rec's consumer group: every batch applied on the event loop, retried until it is (never skipped)."""
    return AsyncConsumer(
        ConsumerConfig(bootstrap, group, TOPICS), applier.apply, retry_s=0.5, max_retry_s=30.0
    )
