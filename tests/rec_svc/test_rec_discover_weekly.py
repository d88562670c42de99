"""GetDiscoverWeekly over real gRPC: its rules (decision 9), new users, and the store."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from spotify.rec.v1 import rec_pb2

from meshkit import ids
from tests.rec_svc.conftest import NOW, RecEnv, user_metadata


def _active_users(env: RecEnv, n: int) -> list[uuid.UUID]:
    """Users with plays in the last 28 days (the ones Discover Weekly is made for)."""
    inter = env.world.interactions
    recent = inter.user_idx[inter.ts >= (NOW - timedelta(days=28)).timestamp()]
    return [env.world.user_ids[u] for u in sorted(set(recent.tolist()))[:n]]


async def test_mix_has_30_tracks_none_heard_in_28_days_at_most_two_per_artist(rec_env: RecEnv) -> None:
    for user in _active_users(rec_env, 5):
        reply = await rec_env.stub.GetDiscoverWeekly(
            rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(user)
        )
        track_ids = [ids.decode(t.id) for t in reply.tracks]
        assert len(track_ids) == 30
        assert len(set(track_ids)) == 30
        heard = rec_env.plays_of(user, NOW - timedelta(days=28))
        assert heard, "the user should have a history for this test to mean anything"
        assert not heard.intersection(track_ids)
        per_artist: dict[str, int] = {}
        for track in reply.tracks:
            for artist in track.artists:
                per_artist[artist.id] = per_artist.get(artist.id, 0) + 1
        assert max(per_artist.values()) <= 2
        assert reply.model_version == rec_env.version


async def test_mixes_are_personal(rec_env: RecEnv) -> None:
    """Listeners with different favourite genres get different mixes, and none gets the new-user chart.

    (How good the mixes are is measured by the offline evaluation, not here.)
    """
    genre_of = {t.track_id: t.genres[0] for t in rec_env.world.tracks}
    chart = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(uuid.uuid4())
    )
    chart_ids = {t.id for t in chart.tracks}
    mixes: dict[str, set[str]] = {}
    for user in _active_users(rec_env, 30):
        heard = rec_env.plays_of(user, NOW - timedelta(days=28))
        counts: dict[str, int] = {}
        for t in heard:
            counts[genre_of[t]] = counts.get(genre_of[t], 0) + 1
        top = max(counts, key=lambda g: counts[g])
        if top in mixes:
            continue
        reply = await rec_env.stub.GetDiscoverWeekly(
            rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(user)
        )
        mixes[top] = {t.id for t in reply.tracks}
        assert len(mixes[top] & chart_ids) <= 20, "a listener's mix is not the new-user chart"
    assert len(mixes) >= 3
    tops = list(mixes)
    overlaps = [
        len(mixes[a] & mixes[b]) / len(mixes[a] | mixes[b]) for i, a in enumerate(tops) for b in tops[i + 1 :]
    ]
    assert max(overlaps) < 0.5


async def test_a_brand_new_user_gets_a_full_list(rec_env: RecEnv) -> None:
    reply = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(limit=30), metadata=user_metadata(uuid.uuid4())
    )
    assert len(reply.tracks) == 30
    per_artist: dict[str, int] = {}
    for track in reply.tracks:
        per_artist[track.artists[0].id] = per_artist.get(track.artists[0].id, 0) + 1
    assert max(per_artist.values()) <= 2
    genres = {rec_env.catalog.tracks[ids.decode(t.id)].genres[0] for t in reply.tracks}
    assert len(genres) == len(rec_env.catalog.genres()), "a new user's list spans the catalog's genres"


async def test_stored_mix_is_served_until_the_user_plays_one_of_its_tracks(rec_env: RecEnv) -> None:
    user = _active_users(rec_env, 40)[-1]
    first = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(user)
    )
    again = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(user)
    )
    assert again.generated_at == first.generated_at
    assert [t.id for t in again.tracks] == [t.id for t in first.tracks]

    played = first.tracks[0]
    await rec_env.runtime.applier.store.add_listens(
        [
            {
                "stream_id": f"dw-test-{uuid.uuid4()}",
                "user_id": user,
                "track_id": ids.decode(played.id),
                "artist_ids": [ids.decode(a.id) for a in played.artists],
                "counted_at": NOW,
            }
        ]
    )
    fresh = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(), metadata=user_metadata(user)
    )
    assert played.id not in {t.id for t in fresh.tracks}
    assert len(fresh.tracks) == 30
    assert fresh.generated_at != first.generated_at


async def test_limit_and_identity(rec_env: RecEnv) -> None:
    user = _active_users(rec_env, 1)[0]
    reply = await rec_env.stub.GetDiscoverWeekly(
        rec_pb2.GetDiscoverWeeklyRequest(limit=10), metadata=user_metadata(user)
    )
    assert len(reply.tracks) == 10
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rec_env.stub.GetDiscoverWeekly(rec_pb2.GetDiscoverWeeklyRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rec_env.stub.GetDiscoverWeekly(
            rec_pb2.GetDiscoverWeeklyRequest(limit=31), metadata=user_metadata(user)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
