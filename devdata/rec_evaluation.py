"""Offline evaluation: Discover Weekly against next week's listening, on a synthetic world.

    python -m devdata.rec_evaluation [--users N] [--tracks N] [--small] [--json]

Each user's last week is held out; the model is built from everything before it, exactly as
the batch job would build it that morning. A user's relevant set is the tracks they played
to completion in the held-out week and had not heard in the 28 days before (Discover Weekly
never offers heard tracks, so re-listens are out of reach by design). Four recommenders
produce 30 tracks each with the same rules (at most 2 per artist, nothing heard in 28 days):
a popularity chart, collaborative only, content only and the 60/40 hybrid. Single-source
lists that run short are topped up from the popularity chart, as the service does.

Also reported: ANN recall@10 of both hnswlib indexes against exact numpy search.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

import numpy as np

from devdata.rec_world import SyntheticConfig, World, generate
from rec_svc import recommend
from rec_svc.index import AnnIndex
from rec_svc.model.build import build_model
from rec_svc.model.params import ModelParams
from rec_svc.model.types import Play
from rec_svc.model.weighting import DAY_S
from rec_svc.snapshot import Snapshot

K = 30
METHODS = ("popularity", "collaborative", "content", "hybrid")


@dataclass
class MethodResult:
    method: str
    recall_at_30: float
    ndcg_at_30: float
    coverage: float
    artists_per_list: float
    list_length: float


@dataclass
class Report:
    users_evaluated: int
    tracks: int
    interactions_train: int
    build_seconds: float
    methods: list[MethodResult]
    ann_recall_at_10: dict[str, float]
    config: dict


def _holdout(world: World, now: float) -> dict[int, tuple[list[Play], set]]:
    """Per user index: their 28-day history before `now` and the relevant tracks of the next week."""
    inter = world.interactions
    tracks = inter.tracks
    hist_start = now - 28 * DAY_S
    out: dict[int, tuple[list[Play], set]] = {}
    order = np.argsort(inter.user_idx, kind="stable")
    users = inter.user_idx[order]
    bounds = np.searchsorted(users, np.arange(len(inter.users) + 1))
    from datetime import UTC, datetime

    for u in range(len(inter.users)):
        rows = order[bounds[u] : bounds[u + 1]]
        ts = inter.ts[rows]
        past = rows[(ts >= hist_start) & (ts < now)]
        future = rows[(ts >= now) & (ts < now + 7 * DAY_S) & (inter.weight[rows] > 0)]
        heard = {tracks[t] for t in inter.track_idx[past].tolist()}
        relevant = {tracks[t] for t in inter.track_idx[future].tolist()} - heard
        if not past.size or not relevant:
            continue
        plays = [
            Play(
                tracks[int(inter.track_idx[r])],
                datetime.fromtimestamp(inter.ts[r], UTC),
                float(inter.weight[r]),
            )
            for r in past.tolist()
        ]
        out[u] = (plays, relevant)
    return out


def _popularity_chart(snap: Snapshot, state: recommend.UserState) -> list[int]:
    div = recommend.Diversifier(snap, state.heard)
    for row in snap.popular_order.tolist():
        if len(div.taken) >= K:
            break
        div.offer(row)
    return div.taken


def _single(source: Callable[[Snapshot, recommend.UserState], list]) -> Callable:
    def run(snap: Snapshot, state: recommend.UserState) -> list[int]:
        div = recommend.blend(snap, source(snap, state), [], share=1.0, total=K, exclude=state.heard)
        if len(div.taken) < K:
            for row in snap.popular_order.tolist():
                if len(div.taken) >= K:
                    break
                div.offer(row)
        return div.taken

    return run


def _hybrid(snap: Snapshot, state: recommend.UserState) -> list[int]:
    return recommend.discover_weekly(snap, state, K)[0]


RECOMMENDERS: dict[str, Callable[[Snapshot, recommend.UserState], list[int]]] = {
    "popularity": _popularity_chart,
    "collaborative": _single(recommend.collaborative),
    "content": _single(recommend.content_based),
    "hybrid": _hybrid,
}


def _ndcg(ranked: list, relevant: set) -> float:
    gains = [1.0 / np.log2(i + 2) for i, item in enumerate(ranked[:K]) if item in relevant]
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), K)))
    return float(sum(gains) / ideal) if ideal else 0.0


def ann_recall(index: AnnIndex, vectors: np.ndarray, queries: int = 200, k: int = 10, seed: int = 0) -> float:
    """Mean overlap of hnswlib's top-k with exact cosine top-k, for queries drawn from the data."""
    n = vectors.shape[0]
    if n <= k:
        return 1.0
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, min(queries, n), replace=False)
    q = vectors[picks]
    exact = np.argsort(-(q @ vectors.T), axis=1)[:, :k]
    approx = index.query(q, k)
    hits = [len({r for r, _ in got} & set(want.tolist())) for got, want in zip(approx, exact, strict=True)]
    return float(np.mean(hits) / k)


def evaluate(
    config: SyntheticConfig, params: ModelParams | None = None, log: Callable[[str], None] = print
) -> Report:
    params = params or ModelParams()
    t0 = time.perf_counter()
    world = generate(config)
    now_dt = world.end - timedelta(days=7)
    now = now_dt.timestamp()
    log(f"world: {len(world.tracks)} tracks, {len(world.user_ids)} users, {len(world.interactions)} plays "
        f"({time.perf_counter() - t0:.1f}s)")  # fmt: skip
    inputs = world.inputs(now_dt)
    t1 = time.perf_counter()
    model = build_model(inputs, params)
    snap = Snapshot.from_model(model, "eval")
    build_s = time.perf_counter() - t1
    log(f"model + indexes built in {build_s:.1f}s")

    holdout = _holdout(world, now)
    sums = {m: {"recall": 0.0, "ndcg": 0.0, "artists": 0.0, "length": 0.0} for m in METHODS}
    covered: dict[str, set[int]] = {m: set() for m in METHODS}
    for u, (plays, relevant) in holdout.items():
        state = recommend.user_state(snap, world.user_ids[u], plays, now_dt)
        for method in METHODS:
            rows = RECOMMENDERS[method](snap, state)
            ids = [snap.track_id(r) for r in rows]
            hits = sum(1 for t in ids if t in relevant)
            acc = sums[method]
            acc["recall"] += hits / len(relevant)
            acc["ndcg"] += _ndcg(ids, relevant)
            acc["artists"] += len({int(snap.track_artists[r][0]) for r in rows if snap.track_artists[r].size})
            acc["length"] += len(rows)
            covered[method].update(rows)
    n_users = max(len(holdout), 1)
    results = [
        MethodResult(
            method=m,
            recall_at_30=sums[m]["recall"] / n_users,
            ndcg_at_30=sums[m]["ndcg"] / n_users,
            coverage=len(covered[m]) / len(model.tracks),
            artists_per_list=sums[m]["artists"] / n_users,
            list_length=sums[m]["length"] / n_users,
        )
        for m in METHODS
    ]
    ann = {
        "tracks": ann_recall(snap.tracks, model.track_vectors),
        "users": ann_recall(snap.users, model.user_vectors),
    }
    return Report(
        users_evaluated=len(holdout),
        tracks=len(model.tracks),
        interactions_train=len(inputs.interactions),
        build_seconds=build_s,
        methods=results,
        ann_recall_at_10=ann,
        config={k: (str(v) if not isinstance(v, int | float) else v) for k, v in asdict(config).items()},
    )


def format_report(report: Report) -> str:
    lines = [
        f"users evaluated: {report.users_evaluated}   tracks: {report.tracks}   "
        f"training plays: {report.interactions_train}   build: {report.build_seconds:.1f}s",
        "",
        f"{'method':<14}{'recall@30':>11}{'NDCG@30':>10}{'coverage':>10}{'artists/list':>14}{'length':>8}",
    ]
    for r in report.methods:
        lines.append(
            f"{r.method:<14}{r.recall_at_30:>11.4f}{r.ndcg_at_30:>10.4f}{r.coverage:>10.3f}"
            f"{r.artists_per_list:>14.1f}{r.list_length:>8.1f}"
        )
    base = next(r for r in report.methods if r.method == "popularity").recall_at_30
    hybrid = next(r for r in report.methods if r.method == "hybrid").recall_at_30
    ratio = hybrid / base if base else float("inf")
    lines += [
        "",
        f"hybrid / popularity recall@30: {ratio:.2f}x",
        "ANN recall@10 vs exact numpy search: "
        + ", ".join(f"{name} {value:.3f}" for name, value in report.ann_recall_at_10.items()),
    ]
    return "\n".join(lines)


SMALL = SyntheticConfig(n_genres=8, n_artists=60, n_tracks=600, n_users=300, n_playlists=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devdata.rec_evaluation", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--small", action="store_true", help="a small world (seconds; what the test runs)")
    parser.add_argument("--users", type=int, help="number of synthetic users")
    parser.add_argument("--tracks", type=int, help="number of synthetic tracks")
    parser.add_argument("--seed", type=int, help="world seed")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    config = SMALL if args.small else SyntheticConfig()
    overrides = {"n_users": args.users, "n_tracks": args.tracks, "seed": args.seed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    report = evaluate(config, log=(lambda _: None) if args.json else (lambda m: print(m, file=sys.stderr)))
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
