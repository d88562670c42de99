"""Counted streams as the fault tests check them: a listener who reports sessions through Envoy,
and every count those sessions make, in playback, catalog and rec, against what they must be.

A session counts once: in playback (counted stream, history, royalties, track count, one outbox
event), in catalog (applied stream, the track's stream count) and in rec (a listen); the listener
sees it in recently-played through Envoy. `Ledger.settled` waits until every consumer group has
read to the end of its topic and every outbox row went out, so a count checked after it can no
longer change: a double count would be there to see.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from spotify.playback.v1 import playback_pb2

from catalog_svc.settings import CatalogSettings
from meshkit import ids, topics
from playback_svc.settings import PlaybackSettings
from rec_svc.settings import RecSettings
from tests.faults.harness import FaultMesh, until

# The services' consumer groups, as their settings name them by default (the fault mesh keeps those).
COUNTER_GROUP = PlaybackSettings.model_fields["counter_group"].default
CATALOG_GROUP = CatalogSettings.model_fields["stream_group"].default
REC_GROUP = RecSettings.model_fields["consumer_group"].default
PLAYBACK = topics.PLAYBACK_EVENTS.name
STREAMS = topics.STREAMS_COUNTED.name


@dataclass(frozen=True)
class DemoTrack:
    id: str
    duration_ms: int
    artists: int

    def position_that_counts(self) -> int:
        return min(31_000, self.duration_ms)


def demo_tracks(fm: FaultMesh, count: int) -> list[DemoTrack]:
    """`count` demo tracks with their duration and credited artists, as catalog has them."""
    rows = fm.sql(
        "SELECT t.id, t.duration_ms, count(ta.artist_id) FROM catalog.tracks t"
        " JOIN catalog.track_artists ta ON ta.track_id = t.id"
        " GROUP BY t.id, t.duration_ms ORDER BY t.id LIMIT %s",
        count,
    )
    assert len(rows) == count, rows
    return [DemoTrack(ids.encode(r[0]), int(r[1]), int(r[2])) for r in rows]


@dataclass
class Listener:
    """A fresh account reporting playback through Envoy."""

    client: httpx.Client
    user_id: str

    @property
    def uuid(self) -> uuid.UUID:
        return ids.decode(self.user_id)

    def report(self, events: list[dict]) -> httpx.Response:
        return self.client.post("/api/playback/events", json={"events": events})


def new_listener(fm: FaultMesh, new_account: Callable[..., tuple[str, str, str]]) -> Listener:
    _email, _password, token = new_account("Fault Listener")
    client = httpx.Client(
        base_url=fm.mesh.envoy_url, timeout=30, headers={"authorization": f"Bearer {token}"}
    )
    me = client.get("/v1/me")
    assert me.status_code == 200, me.text
    return Listener(client, me.json()["id"])


def session_events(sessions: list[tuple[str, DemoTrack]]) -> list[dict]:
    """One event per session that makes it count (and a start before it, which never does)."""
    events = []
    for key, track in sessions:
        common = {"idempotency_key": key, "track_id": track.id, "device_type": "automobile"}
        events.append({**common, "event": "start"})
        events.append(
            {
                **common,
                "event": "progress",
                "position_ms": track.position_that_counts(),
                "track_duration_ms": track.duration_ms,
            }
        )
    return events


def new_sessions(tracks: list[DemoTrack], count: int) -> list[tuple[str, DemoTrack]]:
    return [(f"fault-{uuid.uuid4().hex}", tracks[i % len(tracks)]) for i in range(count)]


@dataclass
class Ledger:
    """What one listener's sessions must have counted, with the shared counts it started from."""

    fm: FaultMesh
    listener: Listener
    tracks: list[DemoTrack]
    sessions: list[tuple[str, DemoTrack]] = field(default_factory=list)
    catalog_before: dict[str, int] = field(default_factory=dict)
    playback_before: dict[str, int] = field(default_factory=dict)
    last_in_flight: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, fm: FaultMesh, listener: Listener, tracks: list[DemoTrack]) -> Ledger:
        ledger = cls(fm, listener, tracks)
        ledger.catalog_before = ledger.catalog_counts()
        ledger.playback_before = ledger.playback_counts()
        return ledger

    def catalog_counts(self) -> dict[str, int]:
        sql = "SELECT stream_count FROM catalog.tracks WHERE id = %s"
        return {t.id: int(self.fm.scalar(sql, ids.decode(t.id))) for t in self.tracks}  # type: ignore[call-overload]

    def playback_counts(self) -> dict[str, int]:
        sql = "SELECT coalesce(max(stream_count), 0) FROM playback.track_stream_counts WHERE track_id = %s"
        return {t.id: int(self.fm.scalar(sql, ids.decode(t.id))) for t in self.tracks}  # type: ignore[call-overload]

    def of_user(self, what: str, table: str) -> object:
        """`what` over the listener's rows of `table`."""
        return self.fm.scalar(f"SELECT {what} FROM {table} WHERE user_id = %s", self.listener.uuid)

    def counted(self) -> int:
        """The listener's counted streams in playback, committed."""
        return int(self.of_user("count(*)", "playback.counted_streams"))  # type: ignore[call-overload]

    def fast_path_keys(self) -> int:
        """How many of the sessions Redis's fast path says were counted."""
        client = self.fm.redis()
        try:
            keys = [f"playback:counted:{self.listener.user_id}:{key}" for key, _ in self.sessions]
            return sum(value is not None for value in client.mget(keys)) if keys else 0
        finally:
            client.close()

    def figures(self) -> dict[str, object]:
        """Every count the sessions make, as it stands."""
        fm, user = self.fm, self.listener.uuid
        stream_ids = [
            r[0] for r in fm.sql("SELECT id FROM playback.counted_streams WHERE user_id = %s", user)
        ]
        per_track = Counter(track.id for _, track in self.sessions)
        history = self.listener.client.get("/v1/me/player/recently-played", params={"limit": 1})
        return {
            "counted_streams": len(stream_ids),
            "distinct_keys": self.of_user("count(DISTINCT idempotency_key)", "playback.counted_streams"),
            "listening_history": self.of_user("count(*)", "playback.listening_history"),
            "royalty_rows": self.of_user("count(*)", "playback.royalty_attributions"),
            "royalty_weight": self.of_user("coalesce(sum(weight), 0)", "playback.royalty_attributions"),
            "outbox_events": self.outbox_events(),
            "playback_track_counts": {
                t: n - self.playback_before[t] for t, n in self.playback_counts().items() if t in per_track
            },
            "catalog_applied": fm.scalar(
                "SELECT count(*) FROM catalog.applied_stream_events WHERE stream_id = ANY(%s)", stream_ids
            ),
            "catalog_track_counts": {
                t: n - self.catalog_before[t] for t, n in self.catalog_counts().items() if t in per_track
            },
            "rec_listens": self.of_user("count(*)", "rec.listens"),
            "recently_played_total": history.json().get("total")
            if history.status_code == 200
            else history.text,
        }

    def expected(self) -> dict[str, object]:
        n = len(self.sessions)
        per_track = Counter(track.id for _, track in self.sessions)
        return {
            "counted_streams": n,
            "distinct_keys": n,
            "listening_history": n,
            "royalty_rows": sum(track.artists for _, track in self.sessions),
            "royalty_weight": n,
            "outbox_events": n,
            "playback_track_counts": dict(per_track),
            "catalog_applied": n,
            "catalog_track_counts": dict(per_track),
            "rec_listens": n,
            "recently_played_total": n,
        }

    def outbox_events(self) -> int:
        return int(
            self.fm.scalar(
                "SELECT count(*) FROM playback.outbox WHERE position(%s::bytea in payload) > 0",
                self.listener.user_id.encode(),
            )
        )

    def settle(self, within: float = 90.0) -> dict[str, object]:
        """Wait until every count is what it must be and nothing is left in flight; returns the counts.

        In flight means: an unpublished outbox row, or a consumer group (the counter, catalog's
        projection, rec) that has not committed the end of its topic. Once none is left, no replay
        can come later, so the counts returned are final.
        """
        expected = self.expected()
        seen: list[dict[str, object]] = []

        def reached() -> bool:
            seen[:] = [self.figures()]
            return seen[0] == expected

        try:
            until(reached, "the counts", within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: expected {expected}, got {seen[0]}") from None
        try:
            until(lambda: not self.in_flight(), "nothing to be left in flight", within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: still in flight: {self.last_in_flight}") from None
        return self.figures()

    def in_flight(self) -> list[str]:
        """What may still change a count: unpublished outbox rows, consumer groups behind."""
        left = []
        pending = self.fm.scalar("SELECT count(*) FROM playback.outbox WHERE published_at IS NULL")
        if pending:
            left.append(f"{pending} outbox rows")
        broker = self.fm.broker
        ends = {topic: end_offsets(self.fm, topic) for topic in (PLAYBACK, STREAMS)}
        for group, topic in ((COUNTER_GROUP, PLAYBACK), (CATALOG_GROUP, STREAMS), (REC_GROUP, STREAMS)):
            committed = broker.committed(group, topic)
            if committed != ends[topic]:
                left.append(f"{group} on {topic}: committed {committed}, end {ends[topic]}")
        self.last_in_flight = left
        return left


def end_offsets(fm: FaultMesh, topic: str) -> dict[int, int]:
    """Each partition's end: one past its last message, as read (tansu's ListOffsets answers wrong)."""
    ends = dict.fromkeys(fm.broker.partitions(topic), 0)
    for record in fm.broker.records(topic):
        ends[record.partition] = max(ends[record.partition], record.offset + 1)
    return ends


def announcements_of(fm: FaultMesh, user_id: str) -> list[playback_pb2.StreamCountedEvent]:
    """The user's StreamCountedEvents on streams.counted.v1, as often as they were published."""
    found = []
    for record in fm.broker.records(topics.STREAMS_COUNTED.name):
        event = playback_pb2.StreamCountedEvent.FromString(record.value)
        if event.user_id == user_id:
            found.append(event)
    return found
