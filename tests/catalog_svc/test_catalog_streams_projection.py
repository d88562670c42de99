"""The stream-count projection: idempotent application, the Kafka consumer, the monthly-listeners job."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.playback.v1 import playback_pb2
from sqlalchemy import Engine, create_engine, text

from catalog_svc.stream_store import CountedStream, ProjectionStats, StreamStore
from catalog_svc.streams import StreamCountProjection, parse_event, recompute
from catalog_svc.write_store import purge_write_requests
from meshkit import ids, topics
from meshkit.errors import InvalidArgument
from meshkit.kafka import Producer

if TYPE_CHECKING:
    from conftest import People

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def scratch(scratch_database_url: str) -> Iterator[Engine]:
    engine = create_engine(scratch_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def small_catalog(scratch: Engine) -> dict[str, uuid.UUID]:
    """Two artists; track t1 by a (credited), t2 by a featuring b, t3 with no credits (album artist b)."""
    made = {name: uuid.uuid4() for name in ("a", "b", "album_a", "album_b", "t1", "t2", "t3")}
    with scratch.begin() as conn:
        conn.execute(text("TRUNCATE catalog.artists, catalog.applied_stream_events CASCADE"))
        for artist in ("a", "b"):
            conn.execute(
                text("INSERT INTO catalog.artists (id, name, popularity) VALUES (:id, :n, 33)"),
                {"id": made[artist], "n": f"Artist {artist}"},
            )
        for album, artist in (("album_a", "a"), ("album_b", "b")):
            conn.execute(
                text(
                    "INSERT INTO catalog.albums (id, artist_id, title, popularity) VALUES (:id, :a, 'X', 44)"
                ),
                {"id": made[album], "a": made[artist]},
            )
        for track, album in (("t1", "album_a"), ("t2", "album_a"), ("t3", "album_b")):
            conn.execute(
                text(
                    "INSERT INTO catalog.tracks (id, album_id, title, popularity) VALUES (:id, :al, 'T', 55)"
                ),
                {"id": made[track], "al": made[album]},
            )
        conn.execute(
            text(
                "INSERT INTO catalog.track_artists (track_id, artist_id, position) "
                "VALUES (:t1, :a, 0), (:t2, :a, 0), (:t2, :b, 1)"
            ),
            {"t1": made["t1"], "t2": made["t2"], "a": made["a"], "b": made["b"]},
        )
    return made


def _stream(track: uuid.UUID, user: uuid.UUID, at: dt.datetime = NOW) -> CountedStream:
    return CountedStream(stream_id=uuid.uuid4(), track_id=track, user_id=user, counted_at=at)


def _counts(engine: Engine, made: dict[str, uuid.UUID]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            key: conn.execute(
                text("SELECT stream_count FROM catalog.tracks WHERE id = :id"), {"id": made[key]}
            ).scalar_one()
            for key in ("t1", "t2", "t3")
        }


def _listeners(engine: Engine) -> set[tuple[uuid.UUID, uuid.UUID]]:
    with engine.connect() as conn:
        return {
            tuple(row)
            for row in conn.execute(text("SELECT artist_id, user_id FROM catalog.artist_listeners"))
        }


def test_counts_after_distinct_events_and_replays_change_nothing(
    scratch: Engine, small_catalog: dict[str, uuid.UUID]
) -> None:
    made = small_catalog
    projection = StreamCountProjection(StreamStore(scratch))
    alice, bob = uuid.uuid4(), uuid.uuid4()
    batch = [
        _stream(made["t1"], alice),
        _stream(made["t1"], bob),
        _stream(made["t2"], alice),
        _stream(made["t3"], bob),
    ]
    assert projection.apply(batch) == 4
    assert _counts(scratch, made) == {"t1": 2, "t2": 1, "t3": 1}
    listeners = {
        (made["a"], alice),
        (made["a"], bob),
        (made["b"], alice),  # featured on t2
        (made["b"], bob),  # t3 has no credits: the album's artist
    }
    assert _listeners(scratch) == listeners
    # A replay of the whole batch, alone or mixed with a new stream, adds only the new one.
    assert projection.apply(batch) == 0
    assert projection.apply([*batch[:2], _stream(made["t1"], alice)]) == 1
    assert _counts(scratch, made) == {"t1": 3, "t2": 1, "t3": 1}
    # The same stream twice in one batch counts once.
    twice = _stream(made["t2"], bob)
    assert projection.apply([twice, twice]) == 1
    assert _counts(scratch, made)["t2"] == 2


def test_last_streamed_only_moves_forward(scratch: Engine, small_catalog: dict[str, uuid.UUID]) -> None:
    projection = StreamCountProjection(StreamStore(scratch))
    user = uuid.uuid4()
    projection.apply([_stream(small_catalog["t1"], user, NOW)])
    projection.apply([_stream(small_catalog["t1"], user, NOW - dt.timedelta(days=40))])  # late, older event
    with scratch.connect() as conn:
        last = conn.execute(
            text("SELECT last_streamed_at FROM catalog.artist_listeners WHERE user_id = :u"), {"u": user}
        ).scalar_one()
    assert last == NOW


def test_malformed_events_are_refused_by_the_parser() -> None:
    good = playback_pb2.StreamCountedEvent(
        stream_id=ids.encode(uuid.uuid4()),
        user_id=ids.encode(uuid.uuid4()),
        track_id=ids.encode(uuid.uuid4()),
    )
    assert parse_event(good).counted_at.tzinfo is not None
    with pytest.raises(InvalidArgument):
        parse_event(
            playback_pb2.StreamCountedEvent(stream_id="x", user_id=good.user_id, track_id=good.track_id)
        )


def test_monthly_listeners_and_popularity_job(scratch: Engine, small_catalog: dict[str, uuid.UUID]) -> None:
    made = small_catalog
    projection = StreamCountProjection(StreamStore(scratch))
    recent = [uuid.uuid4() for _ in range(3)]
    old = uuid.uuid4()
    streams = [_stream(made["t1"], user, NOW - dt.timedelta(days=3)) for user in recent]
    streams += [_stream(made["t1"], recent[0], NOW - dt.timedelta(days=1))]  # a second stream, same listener
    streams += [_stream(made["t2"], recent[1], NOW - dt.timedelta(days=2))]
    streams += [_stream(made["t2"], old, NOW - dt.timedelta(days=30))]  # outside the 28-day window
    projection.apply(streams)

    stats = recompute(StreamStore(scratch), now=NOW)
    with scratch.connect() as conn:
        artists = dict(conn.execute(text("SELECT id, monthly_listeners FROM catalog.artists")).all())
        popularity = dict(conn.execute(text("SELECT id, popularity FROM catalog.tracks")).all())
        album_pop = dict(conn.execute(text("SELECT id, popularity FROM catalog.albums")).all())
        artist_pop = dict(conn.execute(text("SELECT id, popularity FROM catalog.artists")).all())
    assert artists == {made["a"]: 3, made["b"]: 1}  # distinct listeners in 28 days; `old` aged out
    assert stats.artists_listeners == 2
    # t1: 4 recent streams (the most) -> 100; t2: 1 recent -> log-scaled; t3 never streamed keeps 55.
    assert popularity[made["t1"]] == 100
    assert popularity[made["t2"]] == round(100 * 0.6931471805599453 / 1.6094379124341003)  # ln 2 / ln 5
    assert popularity[made["t3"]] == 55
    assert album_pop == {made["album_a"]: 100, made["album_b"]: 44}
    assert artist_pop[made["a"]] == 100 and artist_pop[made["b"]] == round(
        100 * 0.6931471805599453 / 1.3862943611198906
    )
    # Running it again changes nothing more.
    assert recompute(StreamStore(scratch), now=NOW) == ProjectionStats(0, 0, 0, 0)
    # A month later everything has aged out: listeners 0, streamed entities decay to 0.
    recompute(StreamStore(scratch), now=NOW + dt.timedelta(days=60))
    with scratch.connect() as conn:
        assert set(conn.execute(text("SELECT monthly_listeners FROM catalog.artists")).scalars()) == {0}
        assert (
            conn.execute(
                text("SELECT popularity FROM catalog.tracks WHERE id = :id"), {"id": made["t1"]}
            ).scalar_one()
            == 0
        )


def test_purge_write_requests(scratch: Engine) -> None:
    with scratch.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO catalog.write_requests "
                "(caller_id, rpc, request_id, fingerprint, entity_id, created_at) VALUES "
                "(:u, 'CreateArtist', 'old', 'f', :e, now() - interval '25 hours'), "
                "(:u, 'CreateArtist', 'new', 'f', :e, now())"
            ),
            {"u": uuid.uuid4(), "e": uuid.uuid4()},
        )
    assert purge_write_requests(scratch) == 1
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT request_id FROM catalog.write_requests")).scalars().all() == ["new"]


# ---- through Kafka, into the running service ------------------------------------------------------


def _event(track_id: str, user_id: uuid.UUID, stream_id: uuid.UUID) -> playback_pb2.StreamCountedEvent:
    counted = Timestamp()
    counted.GetCurrentTime()
    return playback_pb2.StreamCountedEvent(
        stream_id=ids.encode(stream_id),
        idempotency_key=uuid.uuid4().hex,
        user_id=ids.encode(user_id),
        track_id=track_id,
        counted_at=counted,
        product="premium",
    )


def _stream_count(url: str, track_id: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT stream_count FROM catalog.tracks WHERE id = :id"), {"id": ids.decode(track_id)}
            ).scalar_one()
    finally:
        engine.dispose()


async def _until(check: Callable[[], int], expected: int, within_s: float = 45.0) -> int:
    """Poll `check()` until it returns `expected` or the deadline passes; returns the last value."""
    deadline = time.monotonic() + within_s
    value = await asyncio.to_thread(check)
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        value = await asyncio.to_thread(check)
    return value


async def test_the_service_consumes_counted_streams_exactly_once(
    catalog: catalog_pb2_grpc.CatalogServiceStub,
    people: People,
    kafka_bootstrap: str,
    catalog_database_url: str,
) -> None:
    admin = people.admin.metadata
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(name="Streamed", artist_ids=[people.artist_a_id]), metadata=admin
    )
    counted = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album.id, name="Counted", track_number=1), metadata=admin
    )
    sentinel = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album.id, name="Sentinel", track_number=2), metadata=admin
    )
    listener = uuid.uuid4()
    events = [_event(counted.id, listener, uuid.uuid4()) for _ in range(5)]
    producer = await asyncio.to_thread(Producer, kafka_bootstrap)
    try:
        # One key, so one partition: the sentinel is consumed after everything sent before it.
        key = ids.encode(listener)
        await producer.publish_many(topics.STREAMS_COUNTED.name, [(key, e) for e in events])
        assert await _until(lambda: _stream_count(catalog_database_url, counted.id), 5) == 5
        await producer.publish_many(topics.STREAMS_COUNTED.name, [(key, e) for e in events])  # a full replay
        await producer.publish(topics.STREAMS_COUNTED.name, key, _event(sentinel.id, listener, uuid.uuid4()))
        assert await _until(lambda: _stream_count(catalog_database_url, sentinel.id), 1) == 1
        assert _stream_count(catalog_database_url, counted.id) == 5
    finally:
        await asyncio.to_thread(producer.close)
    top = await catalog.ListArtistTopTracks(catalog_pb2.ListArtistTopTracksRequest(id=people.artist_a_id))
    assert top.tracks[0].id == counted.id


def test_the_job_drops_applied_streams_past_the_window_and_the_topics_retention(
    scratch: Engine, small_catalog: dict[str, uuid.UUID]
) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = {
        # counted and applied long ago: counts for nothing, can never come again
        "gone": (now - dt.timedelta(days=40), "40 days"),
        # counted long ago but delivered late, yesterday: a redelivery is still possible
        "late": (now - dt.timedelta(days=40), "1 day"),
        # inside the window: popularity reads it
        "recent": (now - dt.timedelta(days=3), "40 days"),
    }
    ids_of = {name: uuid.uuid4() for name in rows}
    with scratch.begin() as conn:
        for name, (counted_at, applied_ago) in rows.items():
            conn.execute(
                text(
                    "INSERT INTO catalog.applied_stream_events (stream_id, track_id, counted_at, applied_at)"
                    f" VALUES (:s, :t, :c, now() - interval '{applied_ago}')"
                ),
                {"s": ids_of[name], "t": small_catalog["t1"], "c": counted_at},
            )
    stats = recompute(StreamStore(scratch), now=now)
    with scratch.connect() as conn:
        left = set(conn.execute(text("SELECT stream_id FROM catalog.applied_stream_events")).scalars())
    assert stats.stream_events_purged == 1
    assert ids_of["gone"] not in left and {ids_of["late"], ids_of["recent"]} <= left
