"""The registry of Kafka topics: every producer, consumer, test and manifest names topics from here.

Each topic carries protobuf messages of one type, keyed so that one key's events stay in order.
Partition counts are the local mesh's (`ensure_topics`); production sets its own in `k8s/`, and a
test holds those manifests against this registry by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    # Partitions when the local mesh (or a test) creates the topic.
    partitions: int
    # What the message key is; one key's messages are consumed in order.
    key: str
    # The protobuf message every record holds.
    message: str
    producer: str
    consumers: tuple[str, ...]


PLAYBACK_EVENTS = Topic(
    "playback.events.v1",
    partitions=6,
    key="user id",
    message="spotify.playback.v1.PlaybackEvent",
    producer="playback_svc",
    consumers=("playback_svc (stream counter)", "rec_svc (skips)"),
)
STREAMS_COUNTED = Topic(
    "streams.counted.v1",
    partitions=3,
    key="track id",
    message="spotify.playback.v1.StreamCountedEvent",
    producer="playback_svc (stream counter, through its outbox)",
    consumers=("catalog_svc (stream counts)", "rec_svc (listens)"),
)
CATALOG_CHANGES = Topic(
    "catalog.changes.v1",
    partitions=3,
    key="entity id (an artist's, album's or track's changes stay in order)",
    message="spotify.catalog.v1.CatalogChangeEvent",
    producer="catalog_svc (through its outbox)",
    consumers=("rec_svc (live index)",),
)

USERS_DELETED = Topic(
    "users.deleted.v1",
    partitions=3,
    key="user id",
    message="spotify.auth.v1.UserDeletedEvent",
    producer="auth_svc (through its outbox)",
    consumers=("catalog_svc", "library_svc", "playback_svc", "rec_svc"),
)

ALL: tuple[Topic, ...] = (PLAYBACK_EVENTS, STREAMS_COUNTED, CATALOG_CHANGES, USERS_DELETED)
