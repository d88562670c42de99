"""hnswlib wrappers and version directories, without a server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from devdata.rec_world import SyntheticConfig, World, generate
from rec_svc.holder import IndexHolder
from rec_svc.index import AnnIndex
from rec_svc.model.build import Model, build_model
from rec_svc.model.types import TrackMeta
from rec_svc.snapshot import Snapshot
from rec_svc.versions import new_version, prune, read_version, write_version

WORLD = SyntheticConfig(n_genres=4, n_artists=20, n_tracks=200, n_users=50, n_playlists=10, seed=5)


@pytest.fixture(scope="module")
def snapshot_factory() -> tuple[World, Model, Callable[[], Snapshot]]:
    """A world, its model, and a way to index the model as a fresh version (cheap: no rebuild)."""
    world = generate(WORLD)
    model = build_model(world.inputs(world.end - timedelta(days=7)))

    def make() -> Snapshot:
        return Snapshot.from_model(model, new_version())

    return world, model, make


def _unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_queries_match_exact_search_and_honour_exclusions() -> None:
    vectors = _unit(500)
    index = AnnIndex.build(vectors, [uuid.uuid4() for _ in range(500)], ef=200)
    exact = np.argsort(-(vectors[:20] @ vectors.T), axis=1)[:, :10]
    got = index.query(vectors[:20], 10)
    recall = np.mean([len({r for r, _ in g} & set(e.tolist())) / 10 for g, e in zip(got, exact, strict=True)])
    assert recall > 0.98
    assert abs(got[0][0][1] - 1.0) < 1e-5, "a vector's nearest neighbour is itself, similarity 1"
    small = index.query(vectors[0], 5, exclude={0, int(exact[0][1])})[0]
    assert 0 not in {r for r, _ in small} and int(exact[0][1]) not in {r for r, _ in small}
    many = set(range(1, 400))  # above the over-fetch limit: filtered inside the graph search
    filtered = index.query(vectors[0], 5, exclude=many)[0]
    assert len(filtered) == 5 and not many.intersection(r for r, _ in filtered)


def test_live_additions_grow_the_index_past_its_capacity() -> None:
    index = AnnIndex.build(_unit(20), [uuid.uuid4() for _ in range(20)])
    extra = _unit(100, seed=1)
    keys = [uuid.uuid4() for _ in range(100)]
    rows = index.add(keys, extra)
    assert rows == list(range(20, 120))
    assert index.add(keys[:1], extra[:1]) == [20], "adding a known key is a no-op"
    hit = index.query(extra[50], 1)[0][0]
    assert hit[0] == 70
    index.delete(70)
    assert 70 not in {r for r, _ in index.query(extra[50], 10)[0]}
    assert index.live == 119


def test_version_directory_round_trip_and_tamper_detection(snapshot_factory: tuple, tmp_path: Path) -> None:
    _, model, make = snapshot_factory
    snap = make()
    path = write_version(snap, tmp_path)
    assert path.name == snap.version
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary directory left behind"
    loaded = read_version(path)
    queries = model.track_vectors[:10]
    assert loaded.tracks.query(queries, 10) == snap.tracks.query(queries, 10)
    assert loaded.users.keys == snap.users.keys
    assert np.array_equal(loaded.top_tracks, snap.top_tracks)
    assert loaded.params == snap.params
    assert [loaded.track_artists[i].tolist() for i in range(5)] == [
        snap.track_artists[i].tolist() for i in range(5)
    ]
    with pytest.raises(FileExistsError):
        write_version(snap, tmp_path)
    data = bytearray((path / "users.npz").read_bytes())
    data[-10] ^= 0xFF
    (path / "users.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the manifest"):
        read_version(path)


def test_prune_keeps_the_newest_and_the_protected(tmp_path: Path) -> None:
    for name in ("20260101T000000Z-a", "20260102T000000Z-b", "20260103T000000Z-c", "20260104T000000Z-d"):
        (tmp_path / name).mkdir()
    removed = prune(tmp_path, 2, protect={"20260101T000000Z-a"})
    assert removed == ["20260102T000000Z-b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260101T000000Z-a",
        "20260103T000000Z-c",
        "20260104T000000Z-d",
    ]


async def test_a_swap_carries_live_additions_and_deletions_over(snapshot_factory: tuple) -> None:
    world, _, make = snapshot_factory
    holder = IndexHolder()
    first, second = make(), make()
    await holder.swap(first)
    template = world.tracks[0]
    new = TrackMeta(uuid.uuid4(), template.artist_ids, template.genres, template.features, 10.0)
    holder.add_tracks([new])
    gone = world.tracks[1].track_id
    holder.delete_track(gone)
    assert first.track_row(new.track_id) is not None and first.track_row(gone) is None
    in_flight = holder.current  # a request that started before the swap
    old = await holder.swap(second)
    assert old is first and in_flight is first and holder.current is second
    assert second.track_row(new.track_id) is not None, "live addition re-applied to the new version"
    assert second.track_row(gone) is None, "deletion re-applied to the new version"
    vector = second.tracks.vectors([second.track_row(new.track_id)])[0]
    assert second.tracks.query(vector, 1)[0][0][0] == second.track_row(new.track_id)
    # The old version still answers for whoever holds it.
    assert len(in_flight.tracks.query(vector, 5)[0]) == 5
