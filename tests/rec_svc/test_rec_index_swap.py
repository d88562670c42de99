"""Index versions in the running service: swaps under load, live additions, the admin RPCs."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.catalog.v1 import catalog_pb2
from spotify.rec.v1 import rec_pb2
from sqlalchemy import func, select

from meshkit import ids
from rec_svc import batch
from rec_svc.models import EventApplied, TrackInfo
from tests.rec_svc.conftest import NOW, RecEnv, user_metadata

ADMIN = user_metadata(uuid.uuid4(), "user", "admin")


@pytest.fixture(scope="module")
async def second_version(rec_env: RecEnv) -> str:
    """Another build of the same data: a different version to swap between."""
    summary = await batch.build(rec_env.settings, rec_env.rec, reload=False, mixes=False, now=NOW)
    return summary["version"]


async def test_swapping_versions_under_load_fails_no_request(rec_env: RecEnv, second_version: str) -> None:
    stub = rec_env.stub
    tracks = [ids.encode(t.track_id) for t in rec_env.world.tracks[:50]]
    users = rec_env.world.user_ids[:20]
    calls: list[tuple[float, float]] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = n
        while not stop.is_set():
            i += 1
            started = time.perf_counter()
            try:
                if i % 3 == 0:
                    await stub.GetSimilarTracks(rec_pb2.GetSimilarTracksRequest(id=tracks[i % 50], limit=10))
                elif i % 3 == 1:
                    await stub.GetRecommendations(
                        rec_pb2.GetRecommendationsRequest(seed_tracks=tracks[i % 50])
                    )
                else:
                    await stub.GetDiscoverWeekly(
                        rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(users[i % 20])
                    )
            except grpc.aio.AioRpcError as err:
                failures.append(err)
            calls.append((started, time.perf_counter()))

    workers = [asyncio.create_task(worker(n)) for n in range(8)]
    swaps: list[tuple[float, float]] = []
    try:
        await asyncio.sleep(0)  # let the workers start before the first swap
        for version in (second_version, rec_env.version, second_version):
            started = time.perf_counter()
            reply = await stub.ReloadIndexes(rec_pb2.ReloadIndexesRequest(version=version), metadata=ADMIN)
            swaps.append((started, time.perf_counter()))
            assert {s.version for s in reply.indexes} == {version}
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert not failures, f"{len(failures)} of {len(calls)} requests failed during swaps: {failures[:3]}"
    for s_start, s_end in swaps:
        overlapping = [c for c in calls if c[0] < s_end and c[1] > s_start]
        assert overlapping, "no request was in flight during a swap: the test did not test anything"
    status = await stub.GetIndexStatus(rec_pb2.GetIndexStatusRequest(), metadata=ADMIN)
    assert {s.version for s in status.indexes} == {second_version}
    active = await rec_env.runtime.recommendations.store.active_version()
    assert active is not None and active.version == second_version, "an explicit reload activates the version"
    # Back to the session's version for the other tests.
    await stub.ReloadIndexes(rec_pb2.ReloadIndexesRequest(version=rec_env.version), metadata=ADMIN)


def _change(track: catalog_pb2.Track, kind: int, event_id: str) -> bytes:
    at = Timestamp()
    at.GetCurrentTime()
    return catalog_pb2.CatalogChangeEvent(
        event_id=event_id,
        entity_type=catalog_pb2.CatalogChangeEvent.ENTITY_TYPE_TRACK,
        id=track.id,
        change_kind=kind,
        occurred_at=at,
        track=track,
    ).SerializeToString()


async def _count(rec_env: RecEnv, query) -> int:  # type: ignore[no-untyped-def]
    async with rec_env.runtime.recommendations.store.sessions() as session:
        return int(await session.scalar(query))


async def test_a_new_track_shows_up_in_similar_tracks_without_a_rebuild(
    rec_env: RecEnv, second_version: str
) -> None:
    stub = rec_env.stub
    seed = next(t for t in rec_env.world.tracks[20:] if t.features is not None)
    assert seed.features is not None
    twin = replace(
        seed,
        track_id=uuid.uuid4(),
        features={**seed.features, "energy": min(1.0, seed.features["energy"] + 0.01)},
        popularity=0.0,
    )
    await rec_env.add_track(twin)  # the catalog has it (created, audio ingested) ...
    before = await stub.GetSimilarTracks(
        rec_pb2.GetSimilarTracksRequest(id=ids.encode(seed.track_id), limit=10)
    )
    assert ids.encode(twin.track_id) not in {t.id for t in before.tracks}

    # ... and announces it on catalog.changes.v1 (with catalog's own track object), which rec's
    # consumer applies.
    track = await rec_env.catalog_stub.GetTrack(catalog_pb2.GetTrackRequest(id=ids.encode(twin.track_id)))
    event_id = f"evt-{uuid.uuid4()}"
    event = _change(track, catalog_pb2.CatalogChangeEvent.CHANGE_KIND_CREATED, event_id)
    await rec_env.runtime.applier.apply_change(event)
    await rec_env.runtime.applier.apply_change(event)  # redelivered: no second effect
    after = await stub.GetSimilarTracks(
        rec_pb2.GetSimilarTracksRequest(id=ids.encode(seed.track_id), limit=10)
    )
    assert ids.encode(twin.track_id) in {t.id for t in after.tracks}
    own = await stub.GetSimilarTracks(rec_pb2.GetSimilarTracksRequest(id=ids.encode(twin.track_id), limit=10))
    own_ids = [ids.decode(t.id) for t in own.tracks]
    assert sum(rec_env.catalog.tracks[t].genres[0] == seed.genres[0] for t in own_ids) >= 8
    assert ids.encode(seed.artist_ids[0]) in {a.id for t in own.tracks for a in t.artists}
    assert await _count(rec_env, select(func.count()).where(EventApplied.event_id == event_id)) == 1
    stored = await _count(
        rec_env,
        select(func.count()).where(
            TrackInfo.track_id == twin.track_id, TrackInfo.genres == list(twin.genres)
        ),
    )
    assert stored == 1

    # A swap to another version (built before the track existed) keeps it.
    await stub.ReloadIndexes(rec_pb2.ReloadIndexesRequest(version=second_version), metadata=ADMIN)
    try:
        kept = await stub.GetSimilarTracks(
            rec_pb2.GetSimilarTracksRequest(id=ids.encode(seed.track_id), limit=10)
        )
        assert ids.encode(twin.track_id) in {t.id for t in kept.tracks}
    finally:
        await stub.ReloadIndexes(rec_pb2.ReloadIndexesRequest(version=rec_env.version), metadata=ADMIN)

    # Deleted from the catalog: gone from results, without a rebuild either.
    gone = _change(track, catalog_pb2.CatalogChangeEvent.CHANGE_KIND_DELETED, f"evt-{uuid.uuid4()}")
    await rec_env.runtime.applier.apply_change(gone)
    final = await stub.GetSimilarTracks(
        rec_pb2.GetSimilarTracksRequest(id=ids.encode(seed.track_id), limit=10)
    )
    assert ids.encode(twin.track_id) not in {t.id for t in final.tracks}
    assert len(final.tracks) == 10


async def test_admin_rpcs_need_the_admin_role(rec_env: RecEnv) -> None:
    stub = rec_env.stub
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetIndexStatus(rec_pb2.GetIndexStatusRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReloadIndexes(rec_pb2.ReloadIndexesRequest(), metadata=user_metadata(uuid.uuid4()))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReloadIndexes(
            rec_pb2.ReloadIndexesRequest(version="19990101T000000Z-000000"), metadata=ADMIN
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    status = await stub.GetIndexStatus(rec_pb2.GetIndexStatusRequest(), metadata=ADMIN)
    by_name = {s.name: s for s in status.indexes}
    assert set(by_name) == {"tracks", "users"}
    assert by_name["tracks"].size >= len(rec_env.world.tracks)
    assert by_name["tracks"].dimensions == by_name["users"].dimensions == 128
    assert 0 < by_name["users"].size <= len(rec_env.world.user_ids)
    assert by_name["tracks"].path.endswith(by_name["tracks"].version)
