"""The stream counter and the outbox relay killed (SIGKILL) at the exact points exactly-once rests on.

The counter runs inside playback_svc (as `make up` runs it), so the test kills playback_svc and
the supervisor restarts it. Sessions are reported through Envoy by a fresh listener; each test
first proves where the kill lands by observing the state a crash there leaves:

- before the database commit: the counter's transaction waits on a row lock the test holds
  (PostgreSQL says whom it waits for), and nothing of it is visible;
- after the commit, before the offset commit: the fast-path write to Redis is held by the proxy
  (Redis never gets it) and so is any offset commit; the rows are committed, Redis knows nothing;
- after the Redis fast-path write: the offset commit is held by the broker's proxy; rows and
  Redis keys are there, the group's offsets are not;
- the relay after publishing, before marking: the broker's reply to the relay's produce is held;
  the events are on the topic, their outbox rows still unpublished.

Then the counts downstream (playback, catalog's projection, rec, recently-played through Envoy)
must come out exact once everything settled: nothing lost, nothing counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from meshctl import datatier
from meshkit import ids, topics
from tests.faults.harness import FaultMesh, until
from tests.faults.proxy import Trap, kafka_api_key
from tests.faults.streams import (
    COUNTER_GROUP,
    Ledger,
    Listener,
    announcements_of,
    demo_tracks,
    end_offsets,
    new_listener,
    new_sessions,
    session_events,
)

SESSIONS = 6
OFFSET_COMMIT = 8
PRODUCE = 0


@pytest.fixture
def listener(healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[Listener]:
    found = new_listener(healthy_mesh, new_account)
    yield found
    found.client.close()


def offset_commit_of(group: str) -> Callable[[bytes], bool]:
    return lambda frame: kafka_api_key(frame) == OFFSET_COMMIT and group.encode() in frame


def fast_path_write_of(user_id: str) -> Callable[[bytes], bool]:
    # redis-py sends SET as a RESP array: ... $3\r\nSET\r\n$<n>\r\nplayback:counted:<user>:<key> ...
    return lambda chunk: b"\r\nSET\r\n" in chunk and f"playback:counted:{user_id}:".encode() in chunk


def produce_of(topic: str, marker: str) -> Callable[[bytes], bool]:
    wanted = (topic.encode(), marker.encode())
    return lambda frame: kafka_api_key(frame) == PRODUCE and all(part in frame for part in wanted)


def _report(ledger: Ledger, count: int) -> None:
    ledger.sessions = new_sessions(ledger.tracks, count)
    reply = ledger.listener.report(session_events(ledger.sessions))
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 2 * count and reply.json()["rejected"] == []


def test_killed_before_its_database_commit(healthy_mesh: FaultMesh, listener: Listener) -> None:
    fm = healthy_mesh
    track = demo_tracks(fm, 1)[0]
    ledger = Ledger.open(fm, listener, [track])
    with psycopg.connect(datatier.libpq_url(fm.mesh.database_url)) as lock:
        # The counter's transaction adds to this track's count after it inserted the counted
        # streams: holding the row makes it wait there, its inserts uncommitted.
        lock.execute(
            "INSERT INTO playback.track_stream_counts (track_id, stream_count, updated_at)"
            " VALUES (%s, 0, now()) ON CONFLICT (track_id)"
            " DO UPDATE SET stream_count = playback.track_stream_counts.stream_count",
            (ids.decode(track.id),),
        )
        holder = lock.execute("SELECT pg_backend_pid()").fetchone()
        assert holder is not None
        _report(ledger, SESSIONS)

        def counter_waiting_on_us() -> list[tuple]:
            return fm.sql(
                "SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
                " AND state = 'active' AND xact_start IS NOT NULL",
                holder[0],
            )

        (blocked,) = until(counter_waiting_on_us, "the counter's transaction to wait on the held row", 30)
        assert "playback.track_stream_counts" in blocked[1]
        # Its counted streams are inserted but not committed: nobody else can see them.
        assert ledger.counted() == 0
        victim = fm.kill("playback_svc")
        fm.wait_dead(victim)
        lock.rollback()
    # The dead client's transaction is rolled back, never committed.
    gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s"
    until(lambda: fm.scalar(gone, blocked[0]), "its backend to end")
    assert ledger.counted() == 0
    fm.wait_restarted(victim)
    figures = ledger.settle()
    assert figures == ledger.expected()


def test_killed_after_the_commit_before_the_fast_path_write_and_the_offset_commit(
    healthy_mesh: FaultMesh, listener: Listener
) -> None:
    fm = healthy_mesh
    ledger = Ledger.open(fm, listener, demo_tracks(fm, 3))
    fast_path = fm.redis_proxy.arm(Trap(fast_path_write_of(listener.user_id), hold="request"))
    commit = fm.broker.proxy.arm(Trap(offset_commit_of(COUNTER_GROUP), hold="request"))
    try:
        committed_before = fm.broker.committed(COUNTER_GROUP, topics.PLAYBACK_EVENTS.name)
        _report(ledger, SESSIONS)
        fast_path.wait(30)
        # The batch's transaction committed before the fast-path write was sent.
        assert ledger.counted() == SESSIONS
        victim = fm.kill("playback_svc")
        fm.wait_dead(victim)
        assert ledger.fast_path_keys() == 0  # Redis never got the write
        assert not commit.sprung.is_set()  # no offset commit was even sent
        assert fm.broker.committed(COUNTER_GROUP, topics.PLAYBACK_EVENTS.name) == committed_before
        assert committed_before != end_offsets(fm, topics.PLAYBACK_EVENTS.name)
    finally:
        fm.redis_proxy.release(fast_path)
        fm.broker.proxy.release(commit)
    fm.wait_restarted(victim)
    # The restarted counter replays the batch: the unique key turns it into no-ops.
    assert ledger.settle() == ledger.expected()
    assert ledger.fast_path_keys() == SESSIONS


def test_killed_after_the_fast_path_write_before_the_offset_commit(
    healthy_mesh: FaultMesh, listener: Listener
) -> None:
    fm = healthy_mesh
    ledger = Ledger.open(fm, listener, demo_tracks(fm, 3))
    commit = fm.broker.proxy.arm(Trap(offset_commit_of(COUNTER_GROUP), hold="request"))
    try:
        committed_before = fm.broker.committed(COUNTER_GROUP, topics.PLAYBACK_EVENTS.name)
        _report(ledger, SESSIONS)
        commit.wait(30)
        # Everything of the batch is done but its offset commit, which the broker never got.
        assert ledger.counted() == SESSIONS
        assert ledger.fast_path_keys() == SESSIONS
        assert fm.broker.committed(COUNTER_GROUP, topics.PLAYBACK_EVENTS.name) == committed_before
        victim = fm.kill("playback_svc")
        fm.wait_dead(victim)
    finally:
        fm.broker.proxy.release(commit)
    assert fm.broker.committed(COUNTER_GROUP, topics.PLAYBACK_EVENTS.name) == committed_before
    fm.wait_restarted(victim)
    # The replayed batch finds every session in the fast path and never reaches the database.
    assert ledger.settle() == ledger.expected()


def test_relay_killed_after_publishing_before_marking_its_rows(
    healthy_mesh: FaultMesh, listener: Listener
) -> None:
    fm = healthy_mesh
    ledger = Ledger.open(fm, listener, demo_tracks(fm, 3))
    published = fm.broker.proxy.arm(
        Trap(produce_of(topics.STREAMS_COUNTED.name, listener.user_id), hold="reply")
    )
    try:
        _report(ledger, SESSIONS)
        published.wait(30)  # the broker appended the relay's batch and answered; the relay waits
        on_topic = until(lambda: announcements_of(fm, listener.user_id), "the events on the topic", 15)
        assert len(on_topic) == SESSIONS
        unpublished = fm.scalar(
            "SELECT count(*) FROM playback.outbox WHERE published_at IS NULL"
            " AND position(%s::bytea in payload) > 0",
            listener.user_id.encode(),
        )
        assert unpublished == SESSIONS
        victim = fm.kill("playback_svc")
        fm.wait_dead(victim)
    finally:
        fm.broker.proxy.release(published)
    fm.wait_restarted(victim)
    assert ledger.settle() == ledger.expected()
    # The restarted relay sent every row again; consumers took each stream once.
    again = announcements_of(fm, listener.user_id)
    assert len(again) == 2 * SESSIONS
    assert len({event.stream_id for event in again}) == SESSIONS
