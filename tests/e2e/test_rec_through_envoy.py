"""Recommendations as web clients see them: the mesh's own batch build, then JSON through Envoy.

The in-process rec tests (tests/rec_svc) use a synthetic world in a catalog_svc of their own;
these run the mesh's chain once: `rec_svc.batch build` against the demo catalog, rec_svc
hot-loading the version, and the catalog filling in the track objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from devdata import demo
from meshctl import mesh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def built(running_mesh: mesh.Mesh) -> mesh.Mesh:
    """The mesh after one batch build (what `make up` and `make recs` run)."""
    mesh.build_recommendations(running_mesh)
    return running_mesh


@pytest.fixture(scope="module")
def http(built: mesh.Mesh, demo_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=built.envoy_url, timeout=20, headers={"authorization": f"Bearer {demo_token}"}
    ) as client:
        yield client


def _artist_ids(track: dict) -> list[str]:
    return [a["id"] for a in track["artists"]]


def test_discover_weekly_is_30_full_tracks_at_most_two_per_artist(http: httpx.Client) -> None:
    reply = http.get("/api/recs/discover-weekly")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    tracks = body["tracks"]
    assert len(tracks) == 30
    assert len({t["id"] for t in tracks}) == 30
    per_artist = Counter(_artist_ids(t)[0] for t in tracks)
    assert max(per_artist.values()) <= 2
    assert all(t["type"] == "track" and t["uri"] == f"spotify:track:{t['id']}" for t in tracks)
    assert body["model_version"]


def test_a_brand_new_listener_gets_a_list_not_an_error(
    built: mesh.Mesh, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    _email, _password, token = new_account("Brand New Listener")
    with httpx.Client(base_url=built.envoy_url, timeout=20) as client:
        reply = client.get("/api/recs/discover-weekly", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    tracks = reply.json()["tracks"]
    assert len(tracks) == 30
    assert max(Counter(_artist_ids(t)[0] for t in tracks).values()) <= 2


def test_recommendations_from_a_genre_seed_have_spotifys_shape(http: httpx.Client) -> None:
    reply = http.get("/v1/recommendations", params={"seed_genres": "rock", "limit": 10})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [s["id"] for s in body["seeds"]] == ["rock"]
    assert body["seeds"][0]["type"] == "GENRE"
    assert body["seeds"][0]["initialPoolSize"] > 0
    assert len(body["tracks"]) == 10


def test_recommendations_from_the_demo_track_exclude_the_seed(http: httpx.Client) -> None:
    reply = http.get("/v1/recommendations", params={"seed_tracks": demo.DEMO_TRACK_ID, "limit": 5})
    assert reply.status_code == 200, reply.text
    tracks = reply.json()["tracks"]
    assert len(tracks) == 5
    assert demo.DEMO_TRACK_ID not in {t["id"] for t in tracks}


def test_energy_bounds_keep_only_tracks_whose_measured_energy_fits(http: httpx.Client) -> None:
    """Only ingested tracks have measured features, so only they can satisfy a bound."""
    reply = http.get(
        "/v1/recommendations",
        params={"seed_tracks": demo.DEMO_TRACK_ID, "limit": 20, "min_energy": 0.05, "max_energy": 0.95},
    )
    assert reply.status_code == 200, reply.text
    tracks = reply.json()["tracks"]
    assert tracks
    assert len(tracks) < 20  # the tests ingest audio for a handful of demo tracks only
    for track in tracks:
        features = http.get(f"/v1/audio-features/{track['id']}")
        assert features.status_code == 200, features.text
        assert 0.05 <= features.json()["energy"] <= 0.95


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"seed_genres": "rock,pop,jazz,metal,folk,soul"}, "more than five seeds"),
        ({"seed_tracks": "0000000000000000000000"}, "an unknown track"),
        ({"seed_tracks": "not-an-id"}, "a malformed id"),
        ({"seed_genres": "no-such-genre"}, "an unknown genre"),
        ({}, "no seed at all"),
        ({"seed_genres": "rock", "min_energy": 1.5}, "an energy bound outside 0..1"),
    ],
)
def test_bad_seeds_are_400_in_spotifys_error_shape(http: httpx.Client, params: dict, why: str) -> None:
    reply = http.get("/v1/recommendations", params=params)
    assert reply.status_code == 400, (why, reply.text)
    error = reply.json()["error"]
    assert error["status"] == 400
    assert error["message"]


def test_related_artists_of_a_demo_artist(http: httpx.Client) -> None:
    reply = http.get(f"/v1/artists/{demo.DEMO_ARTIST_ID}/related-artists")
    assert reply.status_code == 200, reply.text
    artists = reply.json()["artists"]
    assert artists
    assert demo.DEMO_ARTIST_ID not in {a["id"] for a in artists}
    assert all(a["type"] == "artist" for a in artists)


def test_similar_tracks_and_radio_answer_for_the_demo_track(http: httpx.Client) -> None:
    similar = http.get(f"/api/recs/tracks/{demo.DEMO_TRACK_ID}/similar", params={"limit": 5})
    assert similar.status_code == 200, similar.text
    assert len(similar.json()["tracks"]) == 5
    radio = http.get("/api/recs/radio", params={"seed_track_id": demo.DEMO_TRACK_ID, "page_size": 10})
    assert radio.status_code == 200, radio.text
    assert len(radio.json()["tracks"]) == 10
