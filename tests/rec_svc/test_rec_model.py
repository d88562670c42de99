"""The model builder and the pure parts of the algorithms (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from devdata.rec_world import SyntheticConfig, generate
from meshkit.errors import InvalidArgument
from rec_svc import radio, recommend, tunables
from rec_svc.model import als, content
from rec_svc.model.build import build_model
from rec_svc.model.params import ModelParams
from rec_svc.model.types import Interactions, ModelInputs, Play, TrackMeta
from rec_svc.snapshot import Snapshot

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TINY = SyntheticConfig(n_genres=4, n_artists=30, n_tracks=150, n_users=60, n_playlists=20, days=35, seed=3)


@pytest.fixture(scope="module")
def tiny() -> tuple:
    world = generate(TINY)
    now = world.end - timedelta(days=7)
    model = build_model(world.inputs(now))
    return world, now, model, Snapshot.from_model(model, "unit")


def test_als_recovers_block_structure_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    groups_u = rng.integers(0, 4, 200)
    groups_i = rng.integers(0, 4, 150)
    rows = np.repeat(np.arange(200), 10)
    cols = np.concatenate([rng.choice(np.flatnonzero(groups_i == g), 10) for g in groups_u])
    obs = als.observations(200, 150, rows, cols, np.ones(rows.size, np.float32), alpha=10.0)
    x, y = als.factorize(obs, 16, iterations=8, regularization=0.1, cg_steps=3, seed=1)
    top = np.argsort(-(x @ y.T), axis=1)[:, :10]
    assert (groups_i[top] == groups_u[:, None]).mean() > 0.95
    x2, _ = als.factorize(obs, 16, iterations=8, regularization=0.1, cg_steps=3, seed=1)
    assert np.array_equal(x, x2)


def test_skips_become_negative_preferences() -> None:
    obs = als.observations(
        1, 3, np.array([0, 0, 0, 0]), np.array([0, 1, 1, 2]), np.array([1.0, 1.0, -3.0, -1.0]), 2.0
    )
    assert obs.cols.tolist() == [0, 1, 2]
    assert obs.preference.tolist() == [1.0, 0.0, 0.0]  # listened once, skipped three times: net against
    assert obs.confidence.tolist() == [3.0, 5.0, 3.0]  # 1 + alpha * |net|


def test_track_embeddings_are_128d_unit_and_deterministic(tiny: tuple) -> None:
    world, now, model, _ = tiny
    assert model.track_vectors.shape == (len(world.tracks), 128)
    assert np.allclose(np.linalg.norm(model.track_vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(model.user_vectors, axis=1), 1.0, atol=1e-5)
    again = build_model(world.inputs(now))
    assert np.array_equal(model.track_vectors, again.track_vectors)
    assert np.array_equal(model.user_vectors, again.user_vectors)


def test_same_genre_tracks_are_closer_than_other_genres(tiny: tuple) -> None:
    world, _, model, _ = tiny
    sims = model.track_vectors @ model.track_vectors.T
    same = world.track_genre[:, None] == world.track_genre[None, :]
    np.fill_diagonal(same, False)
    other = ~same
    np.fill_diagonal(other, False)
    assert sims[same].mean() > sims[other].mean() + 0.2


def test_cold_start_tracks_get_a_content_embedding() -> None:
    params = ModelParams()
    a, b = uuid.uuid4(), uuid.uuid4()
    features = {"energy": 0.9, "danceability": 0.8, "valence": 0.7, "tempo": 128.0, "loudness": -5.0}
    tracks = [
        TrackMeta(uuid.uuid4(), (a,), ("techno",), features),
        TrackMeta(uuid.uuid4(), (a,), ("techno",), {**features, "energy": 0.85}),
        TrackMeta(uuid.uuid4(), (b,), ("folk",), {**features, "energy": 0.1, "acousticness": 0.9}),
        TrackMeta(uuid.uuid4()),  # nothing known at all: still a usable (unit) vector
    ]
    inputs = ModelInputs(now=NOW, tracks=tracks, interactions=Interactions.empty())
    model = build_model(inputs, params)  # no plays at all: content only
    assert model.genre_axes == ("techno", "folk")  # by number of tracks
    vectors = content.content_embedding(tracks, params, model.genre_axes)  # what a live addition gets
    assert np.allclose(model.track_vectors, vectors, atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.9
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.5
    assert model.user_vectors.shape == (0, 128)


def test_a_track_known_by_nothing_but_its_id_never_gets_a_zero_vector() -> None:
    """Its artist block hashes the id into two slots; two slots of opposite sign must not cancel."""
    unknown = [TrackMeta(uuid.UUID(int=i)) for i in range(2000)]
    vectors = content.content_embedding(unknown, ModelParams())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_genres_with_an_axis_are_orthogonal_and_new_genres_still_embed() -> None:
    axes = ("rock", "pop", "folk", "jazz")
    rock, pop = content.genre_block(["Rock"], 24, axes), content.genre_block(["pop"], 24, axes)
    assert rock @ pop == 0.0 and rock[0] == 1.0
    unseen = content.genre_block(["vaporwave"], 24, axes)
    assert np.any(unseen) and not np.any(unseen[: len(axes)]), "hashed into the tail, away from the axes"


def test_recency_and_skips_shape_the_user_embedding(tiny: tuple) -> None:
    world, now, _, snap = tiny
    t = [m.track_id for m in world.tracks]
    rows = [snap.track_row(x) for x in t[:3]]
    vectors = snap.tracks.vectors(rows)
    recent_a = [Play(t[0], now - timedelta(days=1)), Play(t[1], now - timedelta(days=27))]
    state = recommend.user_state(snap, uuid.uuid4(), recent_a, now)
    assert state.vector @ vectors[0] > state.vector @ vectors[1], "yesterday weighs more than four weeks ago"
    with_skip = [
        Play(t[0], now - timedelta(days=1)),
        Play(t[2], now - timedelta(days=1), -1.0),
    ]
    skipped = recommend.user_state(snap, uuid.uuid4(), with_skip, now)
    alone = recommend.user_state(snap, uuid.uuid4(), with_skip[:1], now)
    assert skipped.vector @ vectors[2] < alone.vector @ vectors[2], "a skip pushes the profile away"
    only_skips = recommend.user_state(snap, uuid.uuid4(), with_skip[1:], now)
    assert only_skips.is_new


def test_discover_weekly_rules_on_the_pure_path(tiny: tuple) -> None:
    world, now, _, snap = tiny
    user = world.user_ids[0]
    inter = world.interactions
    mask = (
        (inter.user_idx == 0)
        & (inter.ts >= (now - timedelta(days=28)).timestamp())
        & (inter.ts < now.timestamp())
    )
    plays = [
        Play(inter.tracks[int(i)], datetime.fromtimestamp(ts, UTC), float(w))
        for i, ts, w in zip(inter.track_idx[mask], inter.ts[mask], inter.weight[mask], strict=True)
    ]
    state = recommend.user_state(snap, user, plays, now)
    rows, algorithm = recommend.discover_weekly(snap, state)
    assert algorithm == "hybrid"
    assert len(rows) == 30 and len(set(rows)) == 30
    assert not state.heard.intersection(rows)
    artists = [int(snap.track_artists[r][0]) for r in rows]
    assert max(artists.count(a) for a in set(artists)) <= 2


def test_blend_takes_60_percent_from_the_collaborative_side(tiny: tuple) -> None:
    _, _, _, snap = tiny
    # Two disjoint candidate lists, each track by its own artist so diversity does not interfere.
    by_artist: dict[int, int] = {}
    for row in range(len(snap.tracks)):
        by_artist.setdefault(int(snap.track_artists[row][0]), row)
    rows = list(by_artist.values())
    assert len(rows) >= 16
    primary = [(r, 1.0) for r in rows[:8]]
    secondary = [(r, 1.0) for r in rows[8:16]]
    taken = recommend.blend(snap, primary, secondary, total=10).taken
    assert sum(r in dict(primary) for r in taken) == 6
    assert sum(r in dict(secondary) for r in taken) == 4


def test_radio_tokens_round_trip_and_refuse_tampering() -> None:
    station = radio.Station(seed="genre:rock", page=3, anchor="0" * 22, recent=(1, 2, 3))
    token = radio.encode(station)
    assert radio.decode(token, "genre:rock") == station
    with pytest.raises(InvalidArgument):
        radio.decode(token, "genre:jazz")
    with pytest.raises(InvalidArgument):
        radio.decode(token[:-4] + "!!!!", "genre:rock")


def test_tunables_validate_and_filter() -> None:
    from spotify.rec.v1 import rec_pb2

    parsed = tunables.parse(rec_pb2.GetRecommendationsRequest(min_energy=0.4, target_tempo=120.0))
    assert [(t.name, t.minimum, t.target) for t in parsed] == [("energy", 0.4, None), ("tempo", None, 120.0)]
    with pytest.raises(InvalidArgument):
        tunables.parse(rec_pb2.GetRecommendationsRequest(max_popularity=101.0))
    features = np.full((3, 10), np.nan, dtype=np.float32)
    features[0, 1], features[1, 1] = 0.9, 0.1  # energy of rows 0 and 1; row 2 has none
    kept, _ = tunables.apply(parsed[:1], features, np.zeros(3), np.arange(3), np.ones(3))
    assert kept.tolist() == [0]
