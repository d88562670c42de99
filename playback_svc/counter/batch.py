"""From one polled batch of Kafka records to the sessions it may count.

Two steps with a catalog lookup in between: :func:`candidates` keeps events that could count
whatever the track's real duration is; :func:`qualifying` applies the rule with catalog's
duration and keeps the first qualifying event of each session, with everything counting it
writes: its stream id, royalty weights and the ``StreamCountedEvent`` announcing it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument
from playback_svc.clients import Track
from playback_svc.counter import rules

log = logging.getLogger(__name__)


def scoped_key(event: playback_pb2.PlaybackEvent) -> str:
    """The session key, made unique across users.

    Clients choose idempotency keys and the contract only promises they are unique per user
    (e.g. ``<user>_<track>_<session start>``); prefixing the user id keeps one user's key from
    ever pre-empting another's under the table's global unique constraint.
    """
    return f"{event.user_id}:{event.idempotency_key}"


@dataclass(frozen=True)
class Qualified:
    """A session that reached the threshold in this batch: what counting it writes."""

    key: str
    event: playback_pb2.PlaybackEvent
    user_id: uuid.UUID
    track_id: uuid.UUID
    artist_ids: tuple[uuid.UUID, ...]
    counted_at: datetime
    # The counted stream's id, used only if the session was not counted before.
    stream_id: uuid.UUID
    # Each credited artist's royalty weight, in credit order, summing to 1.
    weights: tuple[Decimal, ...]
    announcement: playback_pb2.StreamCountedEvent


def decode(records: Iterable[object]) -> list[playback_pb2.PlaybackEvent]:
    """Parse record values; an undecodable record is logged and dropped (it can never succeed, and
    blocking the partition on it would stop all counting)."""
    events = []
    for record in records:
        try:
            events.append(playback_pb2.PlaybackEvent.FromString(record.value))  # type: ignore[attr-defined]
        except (DecodeError, TypeError):
            partition, offset = getattr(record, "partition", None), getattr(record, "offset", None)
            log.warning("dropping an undecodable playback event at %s/%s", partition, offset)
    return events


def candidates(events: Iterable[playback_pb2.PlaybackEvent]) -> list[playback_pb2.PlaybackEvent]:
    """Events that may make their session count once the track's duration is known."""
    return [event for event in events if rules.may_count(event)]


def _counted_at(event: playback_pb2.PlaybackEvent) -> datetime:
    """The server's receive time: trusted (unlike the client clock) and the same on every replay."""
    if event.HasField("received_at"):
        return event.received_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


def _announcement(
    key: str,
    event: playback_pb2.PlaybackEvent,
    stream_id: uuid.UUID,
    artist_ids: tuple[uuid.UUID, ...],
    counted_at: datetime,
) -> playback_pb2.StreamCountedEvent:
    stamp = Timestamp()
    stamp.FromDatetime(counted_at)
    return playback_pb2.StreamCountedEvent(
        stream_id=ids.encode(stream_id),
        idempotency_key=key,
        user_id=event.user_id,
        track_id=event.track_id,
        artist_ids=[ids.encode(a) for a in artist_ids],
        product=event.product,
        country=event.country,
        counted_at=stamp,
        played_ms=event.position_ms,
    )


def qualifying(events: Iterable[playback_pb2.PlaybackEvent], tracks: Mapping[str, Track]) -> list[Qualified]:
    """The first event per session that counts by catalog's duration; unknown tracks never count."""
    chosen: dict[str, Qualified] = {}
    for event in events:
        key = scoped_key(event)
        if key in chosen:
            continue
        track = tracks.get(event.track_id)
        if track is None:
            continue
        duration = track.duration_ms or event.track_duration_ms
        if not rules.counts(event.event_type, event.position_ms, duration):
            continue
        try:
            user_id = ids.decode(event.user_id)
            track_id = ids.decode(event.track_id)
            artist_ids = tuple(dict.fromkeys(ids.decode(a) for a in track.artist_ids))
        except InvalidArgument:
            log.warning("dropping a playback event with malformed ids", extra={"event_id": event.event_id})
            continue
        counted_at, stream_id = _counted_at(event), uuid.uuid4()
        weights = tuple(rules.split_weights(len(artist_ids)))
        announcement = _announcement(key, event, stream_id, artist_ids, counted_at)
        chosen[key] = Qualified(
            key, event, user_id, track_id, artist_ids, counted_at, stream_id, weights, announcement
        )
    return list(chosen.values())
