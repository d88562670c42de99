"""hnswlib track and user indexes at scale, against exact numpy search, and GetDiscoverWeekly's latency.

    .venv/bin/python -m bench.rec_ann                            # 1,000,000 tracks, 100,000 users
    .venv/bin/python -m bench.rec_ann --tracks 50000 --users 10000 --queries 300   # a quick run

Vectors are 128-d, random but clustered (tracks around genre-like centres, users near the
tracks they would like), L2-normalised like the model's. For each index: build time (on
--threads threads), memory per vector (process RSS growth and the saved file's size), then a
sweep of hnswlib's query-time `ef`: recall@10 against exact numpy search computed in the same
run, single-query latency on one thread, QPS per core. The first ef reaching recall@10 >= 0.95
is compared with exact search (one query at a time, one BLAS thread: per core, like for like).

GetDiscoverWeekly is then measured on a Snapshot holding the same indexes, in a rec_svc server
started in-process (meshkit's bootstrap and interceptors, rec_svc's own setup, a real
PostgreSQL), two ways, user by user alternately: through the domain layer (Recommendations: the
history and stored-mix read, ANN queries, blend, diversify) and through a real gRPC call to the
server (the same, plus the interceptors, protobuf framing over loopback, and the response
hydrated with one BatchGetTracks to a catalog stand-in, bench.playback_common, serving
track objects from memory; a real catalog_svc adds its own database read). Listening history
goes in as counted-stream events (streams.counted.v1) handed to rec_svc's own consumer path. The
first call per user generates the mix on demand, the second is served from the store (after 10
unmeasured warm-up users per path: pool connections, cold pages). A private database is created
on DATABASE_URL's server (default: the machine's) and dropped.
"""

from __future__ import annotations

import os

# One BLAS thread: exact search is measured per core, like hnswlib's single-threaded queries.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hnswlib
import numpy as np
import psutil
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from bench.playback_common import StandInCatalog, serve_catalog
from meshctl import datatier
from meshkit import ids, migrate
from meshkit.config import Settings
from meshkit.context import USER_ID_KEY, USER_ROLES_KEY
from meshkit.server import start_server
from rec_svc.index import SPACE, AnnIndex
from rec_svc.model.params import DIM, ModelParams
from rec_svc.model.types import FEATURE_NAMES
from rec_svc.server import RecRuntime, make_setup
from rec_svc.settings import RecSettings
from rec_svc.snapshot import Ragged, Snapshot, Vocabulary

EF_SWEEP = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
TARGET_RECALL = 0.95
K = 10


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def clustered(n: int, centres: np.ndarray, spread: float, rng: np.random.Generator, chunk: int = 100_000):
    """n unit vectors around the given centres; returns (vectors, cluster of each)."""
    labels = rng.integers(0, centres.shape[0], n)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        v = centres[labels[start:end]] + rng.normal(0, spread, (end - start, centres.shape[1])).astype(
            np.float32
        )
        out[start:end] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out, labels


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """Exact cosine top-k (vectors are unit length, so inner product) by brute force."""
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        sims = queries[start : start + chunk] @ data.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


@dataclass
class IndexFigures:
    name: str
    n: int
    build_s: float
    rss_per_vector: float
    file_per_vector: float
    sweep: list[tuple[int, float, float, float]]  # ef, recall, mean latency ms, p99 ms
    chosen_ef: int | None
    exact_ms: float
    service_ms: float


def measure_index(
    name: str, data: np.ndarray, queries: np.ndarray, threads: int, ef_construction: int, m: int
) -> tuple[AnnIndex, IndexFigures]:
    n = data.shape[0]
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    index = AnnIndex.build(
        data, [uuid.UUID(int=i) for i in range(n)], m=m, ef_construction=ef_construction, threads=threads
    )
    build_s = time.perf_counter() - started
    rss_per_vector = (rss_mb() - before) * 2**20 / n
    # The library itself is measured on a copy loaded from the saved file (hnswlib's own format),
    # then the service's wrapper on the index it built.
    raw = hnswlib.Index(space=SPACE, dim=data.shape[1])
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp) / "i.hnsw")
        file_per_vector = (Path(tmp) / "i.hnsw").stat().st_size / n
        raw.load_index(str(Path(tmp) / "i.hnsw"), max_elements=n)
    print(f"  {name}: built {n:,} vectors in {build_s:.1f}s on {threads} thread(s)", flush=True)

    truth = exact_topk(data, queries, K)
    sweep: list[tuple[int, float, float, float]] = []
    chosen = None
    for ef in EF_SWEEP:
        raw.set_ef(ef)
        labels, _ = raw.knn_query(queries, k=K, num_threads=1)
        recall = float(
            np.mean([len(set(a) & set(b)) / K for a, b in zip(labels.tolist(), truth.tolist(), strict=True)])
        )
        times = []
        for q in queries:
            t0 = time.perf_counter()
            raw.knn_query(q, k=K, num_threads=1)
            times.append(time.perf_counter() - t0)
        mean_ms = 1000 * statistics.fmean(times)
        p99_ms = 1000 * float(np.percentile(times, 99))
        sweep.append((ef, recall, mean_ms, p99_ms))
        print(f"    ef={ef:<4} recall@10={recall:.4f}  {mean_ms:.3f} ms/query", flush=True)
        if recall >= TARGET_RECALL and chosen is None:
            chosen = ef
            break
    del raw
    exact_times = []
    for q in queries[: min(50, len(queries))]:
        t0 = time.perf_counter()
        sims = data @ q
        top = np.argpartition(-sims, K)[:K]
        top[np.argsort(-sims[top])]
        exact_times.append(time.perf_counter() - t0)
    service_times = []
    if chosen is not None:
        index.ef = chosen
        for q in queries[:300]:
            t0 = time.perf_counter()
            index.query(q, K)
            service_times.append(time.perf_counter() - t0)
    return index, IndexFigures(
        name=name,
        n=n,
        build_s=build_s,
        rss_per_vector=rss_per_vector,
        file_per_vector=file_per_vector,
        sweep=sweep,
        chosen_ef=chosen,
        exact_ms=1000 * statistics.fmean(exact_times),
        service_ms=1000 * statistics.fmean(service_times) if service_times else float("nan"),
    )


def print_index(f: IndexFigures) -> None:
    print(f"\n{f.name} index: {f.n:,} x {DIM}-d")
    print(f"  build                {f.build_s:10.1f} s")
    rss, file = f.rss_per_vector, f.file_per_vector
    print(f"  memory per vector    {rss:10.0f} B (RSS growth)   {file:.0f} B (index file)")
    if f.chosen_ef is None:
        print(f"  recall@10 never reached {TARGET_RECALL} in the ef sweep")
        return
    ef, recall, mean_ms, p99_ms = f.sweep[-1]
    print(f"  ef for recall@10>={TARGET_RECALL}  {ef:10d}     (recall@10 {recall:.4f})")
    print(f"  hnswlib query        {mean_ms:10.3f} ms mean, {p99_ms:.3f} ms p99, one thread")
    print(f"  rec_svc AnnIndex     {f.service_ms:10.3f} ms mean (wrapper: lock, exclusions, Python)")
    print(f"  QPS per core         {1000 / mean_ms:10.0f}")
    print(f"  exact numpy search   {f.exact_ms:10.3f} ms/query, {1000 / f.exact_ms:.1f} QPS per core")
    print(f"  ANN / exact speed-up {f.exact_ms / mean_ms:10.0f}x")


def synthetic_snapshot(
    tracks: AnnIndex,
    users: AnnIndex,
    track_cluster: np.ndarray,
    user_cluster: np.ndarray,
    rng: np.random.Generator,
) -> Snapshot:
    """A served version over the benchmark's indexes, with metadata shaped like a real catalog's."""
    n_tracks, n_users = len(tracks), len(users)
    n_artists = max(n_tracks // 10, 1)
    n_genres = 100
    # An artist's tracks sit in one cluster; a cluster belongs to one genre.
    by_cluster = np.argsort(track_cluster, kind="stable")
    artist_of = np.empty(n_tracks, dtype=np.int64)
    artist_of[by_cluster] = np.arange(n_tracks) * n_artists // n_tracks
    genre_of = track_cluster % n_genres
    members = [np.flatnonzero(track_cluster == c) for c in range(int(track_cluster.max()) + 1)]
    top_tracks = np.concatenate(
        [rng.choice(members[c], 50) if members[c].size else np.zeros(0, np.int64) for c in user_cluster]
    )
    counts = np.asarray([50 if members[c].size else 0 for c in user_cluster])
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    popularity = rng.pareto(1.2, n_tracks).astype(np.float32)
    return Snapshot(
        version="bench",
        built_at=datetime.now(UTC),
        params=ModelParams(),
        tracks=tracks,
        users=users,
        artists=Vocabulary.of([uuid.UUID(int=(1 << 64) + a) for a in range(n_artists)]),
        genres=Vocabulary.of([f"genre-{g}" for g in range(n_genres)]),
        track_artists=Ragged(np.arange(n_tracks + 1, dtype=np.int64), artist_of),
        track_genres=Ragged(np.arange(n_tracks + 1, dtype=np.int64), genre_of),
        features=np.full((n_tracks, len(FEATURE_NAMES)), np.nan, dtype=np.float32),
        popularity=popularity,
        catalog_popularity=np.minimum(popularity * 10, 100),
        top_indptr=indptr,
        top_tracks=top_tracks.astype(np.int64),
        top_scores=rng.random(top_tracks.size).astype(np.float32) + 0.1,
        artist_vectors=np.zeros((0, DIM), np.float32),
        genre_vectors=np.zeros((0, DIM), np.float32),
    )


class SnapshotTracks(Mapping[str, catalog_pb2.Track]):
    """The snapshot's tracks as catalog track objects, made once when first asked for (1M made up
    front would cost gigabytes); what the catalog stand-in serves to hydrate responses."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._made: dict[str, catalog_pb2.Track] = {}

    def _row(self, key: str) -> int | None:
        return self.snap.track_row(ids.decode(key)) if len(key) == ids.ID_LENGTH else None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._made or self._row(key) is not None)

    def __getitem__(self, key: str) -> catalog_pb2.Track:
        made = self._made.get(key)
        if made is not None:
            return made
        row = self._row(key)
        if row is None:
            raise KeyError(key)
        artists = [self.snap.artists.items[int(a)] for a in self.snap.track_artists[row]]
        made = self._made[key] = catalog_pb2.Track(
            id=key,
            name=f"Track {key[:6]}",
            type="track",
            uri=f"spotify:track:{key}",
            duration_ms=180_000,
            artists=[catalog_pb2.Artist(id=ids.encode(a), type="artist") for a in artists],
        )
        return made

    def __iter__(self) -> Iterator[str]:
        return (ids.encode(self.snap.track_id(r)) for r in range(len(self.snap.tracks)))

    def __len__(self) -> int:
        return len(self.snap.tracks)


@dataclass
class DiscoverWeeklyFigures:
    """Seconds per call, by path (domain layer or gRPC) and source (on demand or from the store)."""

    domain_on_demand: list[float]
    domain_stored: list[float]
    grpc_on_demand: list[float]
    grpc_stored: list[float]
    hydrate: list[float]  # the servicer's BatchGetTracks of a mix's 30 tracks, alone


async def seed_history(
    runtime: RecRuntime,
    snap: Snapshot,
    track_cluster: np.ndarray,
    users: list[uuid.UUID],
    rng: np.random.Generator,
    now: datetime,
) -> None:
    """60 counted streams per user over the last 28 days, all from one cluster of tracks, as the
    counted-stream events playback publishes, applied by rec_svc's consumer path."""
    members: dict[int, np.ndarray] = {}
    events = []
    for user in users:
        cluster = int(rng.integers(0, int(track_cluster.max()) + 1))
        if cluster not in members:
            members[cluster] = np.flatnonzero(track_cluster == cluster)
        for t in rng.choice(members[cluster], 60):
            counted_at = Timestamp()
            counted_at.FromDatetime(now - timedelta(seconds=float(rng.uniform(0, 27 * 86400))))
            stream_id = uuid.uuid4().hex
            events.append(
                playback_pb2.StreamCountedEvent(
                    stream_id=stream_id,
                    idempotency_key=stream_id,
                    user_id=ids.encode(user),
                    track_id=ids.encode(snap.track_id(int(t))),
                    product="premium",
                    counted_at=counted_at,
                    played_ms=180_000,
                ).SerializeToString()
            )
    for i in range(0, len(events), 5000):
        await runtime.applier.apply_streams(events[i : i + 5000])


async def measure_discover_weekly(
    snap: Snapshot, track_cluster: np.ndarray, samples: int, rng: np.random.Generator, database_url: str
) -> DiscoverWeeklyFigures:
    server = datatier.with_database(database_url, "postgres")
    name = f"rec_bench_{uuid.uuid4().hex[:8]}"
    datatier.create_database(server, name)
    url = datatier.with_database(server, name)
    catalog = StandInCatalog()
    catalog.tracks = SnapshotTracks(snap)  # type: ignore[assignment]
    try:
        await asyncio.to_thread(migrate.upgrade, "rec_svc", url)
        with serve_catalog(catalog) as catalog_addr, tempfile.TemporaryDirectory() as index_dir:
            async with AsyncExitStack() as stack:
                settings = Settings(
                    database_url=url, catalog_addr=catalog_addr, listen_addr="127.0.0.1:0", metrics_port=-1
                )
                rec = RecSettings(index_dir=Path(index_dir), consumers=False, reload_poll_s=0)
                ready: list[RecRuntime] = []
                running = await start_server(
                    "rec_svc", make_setup(rec, on_ready=ready.append), settings, stack
                )
                stack.push_async_callback(running.stop, 0)
                runtime = ready[0]
                # As the service swaps a built version in (it also takes the version out of the GC's way).
                await runtime.recommendations.holder.swap(snap)
                channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
                stack.push_async_callback(channel.close)
                stub = rec_pb2_grpc.RecommendationServiceStub(channel)
                return await _measure(runtime, stub, snap, track_cluster, samples, rng)
    finally:
        datatier.drop_database(server, name)


async def _measure(
    runtime: RecRuntime,
    stub: rec_pb2_grpc.RecommendationServiceStub,
    snap: Snapshot,
    track_cluster: np.ndarray,
    samples: int,
    rng: np.random.Generator,
) -> DiscoverWeeklyFigures:
    service = runtime.recommendations
    now = datetime.now(UTC)
    warmup = 10  # first calls open pool connections and touch cold index pages: not measured
    domain_users = [uuid.uuid4() for _ in range(samples + warmup)]
    grpc_users = [uuid.uuid4() for _ in range(samples + warmup)]
    await seed_history(runtime, snap, track_cluster, domain_users + grpc_users, rng, now)
    figures = DiscoverWeeklyFigures([], [], [], [], [])

    async def domain(user: uuid.UUID, measure: bool) -> None:
        t0 = time.perf_counter()
        mix, source = await service.discover_weekly(user, now)
        t1 = time.perf_counter()
        assert source != "store" and len(mix.track_ids) == 30, (source, len(mix.track_ids))
        _, source = await service.discover_weekly(user, now)
        t2 = time.perf_counter()
        assert source == "store"
        t3 = time.perf_counter()
        found = await runtime.applier.catalog.tracks(mix.track_ids)
        t4 = time.perf_counter()
        assert len(found) == 30
        if measure:
            figures.domain_on_demand.append(t1 - t0)
            figures.domain_stored.append(t2 - t1)
            figures.hydrate.append(t4 - t3)

    async def grpc_call(user: uuid.UUID, measure: bool) -> None:
        metadata = ((USER_ID_KEY, ids.encode(user)), (USER_ROLES_KEY, "user"))
        request = rec_pb2.GetDiscoverWeeklyRequest()
        t0 = time.perf_counter()
        fresh = await stub.GetDiscoverWeekly(request, metadata=metadata, timeout=10)
        t1 = time.perf_counter()
        again = await stub.GetDiscoverWeekly(request, metadata=metadata, timeout=10)
        t2 = time.perf_counter()
        assert len(fresh.tracks) == 30 and all(t.name for t in fresh.tracks), "30 hydrated tracks"
        assert again.generated_at == fresh.generated_at, "the second call is served from the store"
        assert [t.id for t in again.tracks] == [t.id for t in fresh.tracks]
        if measure:
            figures.grpc_on_demand.append(t1 - t0)
            figures.grpc_stored.append(t2 - t1)

    # Alternating user by user, so both paths see the same machine (load elsewhere, cache state).
    for i, (d_user, g_user) in enumerate(zip(domain_users, grpc_users, strict=True)):
        await domain(d_user, i >= warmup)
        await grpc_call(g_user, i >= warmup)
    return figures


def p95(values: list[float]) -> float:
    return 1000 * float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rec_ann", description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000, help="queries for recall and latency")
    parser.add_argument("--threads", type=int, default=2, help="threads for index builds")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--dw-users", type=int, default=200, help="users for the GetDiscoverWeekly figures")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", migrate.DEFAULT_DATABASE_URL)
    )
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    print(f"machine: {os.cpu_count()} cores, numpy BLAS threads 1, hnswlib build threads {args.threads}")

    n_clusters = max(args.tracks // 500, 10)
    centres = rng.normal(0, 1, (n_clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    started = time.perf_counter()
    track_data, track_cluster = clustered(args.tracks, centres, 0.08, rng)
    user_data, user_cluster = clustered(args.users, centres, 0.10, rng)
    track_queries, _ = clustered(args.queries, centres, 0.08, rng)
    user_queries, _ = clustered(args.queries, centres, 0.10, rng)
    print(f"generated vectors in {time.perf_counter() - started:.1f}s ({n_clusters} clusters)", flush=True)

    tracks, track_fig = measure_index(
        "tracks", track_data, track_queries, args.threads, args.ef_construction, args.m
    )
    users, user_fig = measure_index(
        "users", user_data, user_queries, args.threads, args.ef_construction, args.m
    )
    print_index(track_fig)
    print_index(user_fig)

    tracks.ef = track_fig.chosen_ef or 64
    users.ef = user_fig.chosen_ef or 64
    del track_data, user_data
    gc.collect()
    snap = synthetic_snapshot(tracks, users, track_cluster, user_cluster, rng)
    dw = asyncio.run(measure_discover_weekly(snap, track_cluster, args.dw_users, rng, args.database_url))
    print_discover_weekly(dw)


def print_discover_weekly(dw: DiscoverWeeklyFigures) -> None:
    n = len(dw.grpc_on_demand)
    print(f"\nGetDiscoverWeekly (real PostgreSQL, {n} users per path, 60 plays each), ms")
    print(f"  {'':<20} {'domain layer':>16}   {'gRPC call':>16}   {'gRPC - domain':>16}")
    print(
        f"  {'':<20} {'p50':>7} {'p95':>8}   {'p50':>7} {'p95':>8}   {'p50':>7} {'p95':>8}   goal (gRPC p95)"
    )
    rows = (
        ("generated on demand", dw.domain_on_demand, dw.grpc_on_demand, 50),
        ("served from store", dw.domain_stored, dw.grpc_stored, 5),
    )
    for label, domain, grpc_path, goal in rows:
        d50, d95 = 1000 * statistics.median(domain), p95(domain)
        g50, g95 = 1000 * statistics.median(grpc_path), p95(grpc_path)
        verdict = "met" if g95 < goal else "MISSED"
        print(
            f"  {label:<20} {d50:7.2f} {d95:8.2f}   {g50:7.2f} {g95:8.2f}   "
            f"{g50 - d50:+7.2f} {g95 - d95:+8.2f}   < {goal} ms: {verdict}"
        )
    h50, h95 = 1000 * statistics.median(dw.hydrate), p95(dw.hydrate)
    print(f"  hydration alone (one BatchGetTracks of 30 to the stand-in): p50 {h50:.2f}, p95 {h95:.2f}")
    ratio_domain = p95(dw.domain_on_demand) / p95(dw.domain_stored)
    ratio_grpc = p95(dw.grpc_on_demand) / p95(dw.grpc_stored)
    print(f"  on demand / store (p95): {ratio_domain:.1f}x domain layer, {ratio_grpc:.1f}x gRPC")


if __name__ == "__main__":
    main()
