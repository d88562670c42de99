"""GetRecommendations, GetSimilarTracks, GetSimilarArtists and GetRadio over real gRPC."""

from __future__ import annotations

import uuid

import grpc
import pytest
from spotify.rec.v1 import rec_pb2

from meshkit import ids
from tests.rec_svc.conftest import RecEnv


def _track(env: RecEnv, n: int = 0) -> uuid.UUID:
    return env.world.tracks[n].track_id


async def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


# -- /v1/recommendations --------------------------------------------------------------------------


async def test_recommendations_have_spotifys_shape(rec_env: RecEnv) -> None:
    seed = _track(rec_env)
    artist = rec_env.world.tracks[40].artist_ids[0]
    genre = rec_env.catalog.genres()[0]
    reply = await rec_env.stub.GetRecommendations(
        rec_pb2.GetRecommendationsRequest(
            seed_tracks=f"spotify:track:{ids.encode(seed)}",
            seed_artists=ids.encode(artist),
            seed_genres=genre.upper(),
            limit=25,
        )
    )
    assert len(reply.tracks) == 25
    assert [(s.type, s.id) for s in reply.seeds] == [
        ("TRACK", ids.encode(seed)),
        ("ARTIST", ids.encode(artist)),
        ("GENRE", genre),
    ]
    assert reply.seeds[0].href.endswith(f"/v1/tracks/{ids.encode(seed)}")
    assert reply.seeds[2].href == ""
    for s in reply.seeds:
        assert s.initialPoolSize >= s.afterFilteringSize == s.afterRelinkingSize > 0
    assert ids.encode(seed) not in {t.id for t in reply.tracks}
    assert len({t.id for t in reply.tracks}) == 25


async def test_min_max_filters_hold_and_targets_steer(rec_env: RecEnv) -> None:
    genre = rec_env.catalog.genres()[1]
    reply = await rec_env.stub.GetRecommendations(
        rec_pb2.GetRecommendationsRequest(seed_genres=genre, min_energy=0.5, max_tempo=140.0, limit=50)
    )
    assert reply.tracks
    for track in reply.tracks:
        features = rec_env.catalog.tracks[ids.decode(track.id)].features
        assert features is not None, "a track without features cannot satisfy a filter"
        assert features["energy"] >= 0.5
        assert features["tempo"] <= 140.0
    assert reply.seeds[0].afterFilteringSize < reply.seeds[0].initialPoolSize

    async def mean_valence(target: float) -> float:
        r = await rec_env.stub.GetRecommendations(
            rec_pb2.GetRecommendationsRequest(seed_genres=genre, target_valence=target, limit=20)
        )
        values = [rec_env.catalog.tracks[ids.decode(t.id)].features for t in r.tracks]
        known = [f["valence"] for f in values if f]
        return sum(known) / len(known)

    assert await mean_valence(1.0) > await mean_valence(0.0)


@pytest.mark.parametrize(
    ("request_fields", "why"),
    [
        ({"seed_tracks": ids.encode(uuid.UUID(int=12345))}, "unknown track id"),
        ({"seed_artists": ids.encode(uuid.UUID(int=67890))}, "unknown artist id"),
        ({"seed_genres": "polka-step"}, "unknown genre"),
        ({"seed_tracks": "not-an-id"}, "malformed id"),
        ({}, "no seed at all"),
        ({"seed_genres": "rock", "limit": 101}, "limit above 100"),
        ({"seed_genres": "rock", "min_energy": 1.5}, "energy outside 0..1"),
        ({"seed_genres": "rock", "min_tempo": 150.0, "max_tempo": 100.0}, "min above max"),
    ],
)
async def test_bad_requests_are_invalid_argument(rec_env: RecEnv, request_fields: dict, why: str) -> None:
    code = await _code(rec_env.stub.GetRecommendations(rec_pb2.GetRecommendationsRequest(**request_fields)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, why


async def test_more_than_five_seeds_is_invalid_argument(rec_env: RecEnv) -> None:
    tracks = ",".join(ids.encode(_track(rec_env, n)) for n in range(4))
    genres = ",".join(rec_env.catalog.genres()[:2])
    code = await _code(
        rec_env.stub.GetRecommendations(
            rec_pb2.GetRecommendationsRequest(seed_tracks=tracks, seed_genres=genres)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    five = await rec_env.stub.GetRecommendations(
        rec_pb2.GetRecommendationsRequest(seed_tracks=tracks, seed_genres=genres.split(",")[0])
    )
    assert len(five.seeds) == 5


# -- similar tracks and artists ---------------------------------------------------------------------


async def test_similar_tracks_are_near_the_seed(rec_env: RecEnv) -> None:
    seed = rec_env.world.tracks[7]
    reply = await rec_env.stub.GetSimilarTracks(rec_pb2.GetSimilarTracksRequest(id=ids.encode(seed.track_id)))
    assert len(reply.tracks) == 20
    assert ids.encode(seed.track_id) not in {t.id for t in reply.tracks}
    same_genre = sum(
        rec_env.catalog.tracks[ids.decode(t.id)].genres[0] == seed.genres[0] for t in reply.tracks
    )
    assert same_genre >= 15
    assert await _code(
        rec_env.stub.GetSimilarTracks(rec_pb2.GetSimilarTracksRequest(id=ids.encode(uuid.uuid4())))
    ) == (grpc.StatusCode.NOT_FOUND)
    assert await _code(rec_env.stub.GetSimilarTracks(rec_pb2.GetSimilarTracksRequest(id="nope"))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_related_artists_share_the_genre(rec_env: RecEnv) -> None:
    artist = rec_env.world.tracks[0].artist_ids[0]
    genre = rec_env.catalog.artist_genres[artist][0]
    reply = await rec_env.stub.GetSimilarArtists(rec_pb2.GetSimilarArtistsRequest(id=ids.encode(artist)))
    assert 0 < len(reply.artists) <= 20
    assert ids.encode(artist) not in {a.id for a in reply.artists}
    assert all(a.genres for a in reply.artists), "full artist objects from the catalog"
    assert genre in reply.artists[0].genres
    code = await _code(
        rec_env.stub.GetSimilarArtists(rec_pb2.GetSimilarArtistsRequest(id=ids.encode(uuid.uuid4())))
    )
    assert code == grpc.StatusCode.NOT_FOUND


# -- radio ------------------------------------------------------------------------------------------


async def test_radio_is_paged_diversified_and_does_not_repeat(rec_env: RecEnv) -> None:
    seed = rec_env.world.tracks[3]
    request = rec_pb2.GetRadioRequest(seed_track_id=ids.encode(seed.track_id), page_size=10)
    seen: list[str] = []
    token = ""
    for page in range(6):
        request.page_token = token
        reply = await rec_env.stub.GetRadio(request)
        assert len(reply.tracks) == 10
        assert reply.next_page_token
        if page == 0:
            assert reply.tracks[0].id == ids.encode(seed.track_id), "a track station starts with its seed"
        per_artist: dict[str, int] = {}
        for t in reply.tracks:
            per_artist[t.artists[0].id] = per_artist.get(t.artists[0].id, 0) + 1
        assert max(per_artist.values()) <= 2
        seen.extend(t.id for t in reply.tracks)
        token = reply.next_page_token
    assert len(set(seen)) == len(seen), "60 tracks without a repeat"
    again = await rec_env.stub.GetRadio(
        rec_pb2.GetRadioRequest(seed_track_id=ids.encode(seed.track_id), page_size=10, page_token=token)
    )
    assert [t.id for t in again.tracks] == [
        t.id
        for t in (
            await rec_env.stub.GetRadio(
                rec_pb2.GetRadioRequest(
                    seed_track_id=ids.encode(seed.track_id), page_size=10, page_token=token
                )
            )
        ).tracks
    ], "the same token gives the same page"


async def test_radio_never_ends_on_a_small_genre(rec_env: RecEnv) -> None:
    genre = rec_env.catalog.genres()[2]
    token = ""
    for _ in range(12):  # 600 tracks from a genre of about 60: the station has to come back around
        reply = await rec_env.stub.GetRadio(
            rec_pb2.GetRadioRequest(seed_genre=genre, page_size=50, page_token=token)
        )
        assert len(reply.tracks) == 50
        token = reply.next_page_token


async def test_radio_rejects_foreign_tokens_and_bad_seeds(rec_env: RecEnv) -> None:
    artist = ids.encode(rec_env.world.tracks[0].artist_ids[0])
    first = await rec_env.stub.GetRadio(rec_pb2.GetRadioRequest(seed_artist_id=artist))
    assert len(first.tracks) == 20
    other = rec_pb2.GetRadioRequest(seed_genre=rec_env.catalog.genres()[0], page_token=first.next_page_token)
    assert await _code(rec_env.stub.GetRadio(other)) == grpc.StatusCode.INVALID_ARGUMENT
    garbage = rec_pb2.GetRadioRequest(seed_artist_id=artist, page_token="%%%")
    assert await _code(rec_env.stub.GetRadio(garbage)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(rec_env.stub.GetRadio(rec_pb2.GetRadioRequest())) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(rec_env.stub.GetRadio(rec_pb2.GetRadioRequest(seed_genre="no-such-genre"))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_track_objects_come_from_the_catalog_one_call_per_50_then_from_the_cache(
    rec_env: RecEnv,
) -> None:
    rec_env.runtime.recommendations.catalog.track_cache.clear()  # earlier tests filled it
    request = rec_pb2.GetRecommendationsRequest(seed_tracks=ids.encode(_track(rec_env, 5)), limit=60)
    before = rec_env.catalog_calls("BatchGetTracks")
    reply = await rec_env.stub.GetRecommendations(request)
    assert len(reply.tracks) == 60
    assert rec_env.catalog_calls("BatchGetTracks") - before == 2
    names = {t.id: f"Track {t.id[:6]}" for t in reply.tracks}  # what the world's catalog calls them
    assert all(t.name == names[t.id] and t.uri == f"spotify:track:{t.id}" for t in reply.tracks)
    again = await rec_env.stub.GetRecommendations(request)
    assert [t.id for t in again.tracks] == [t.id for t in reply.tracks]
    assert rec_env.catalog_calls("BatchGetTracks") - before == 2  # all 60 objects were cached
