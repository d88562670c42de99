"""The mesh's memory at rest: RSS (and USS, the pages a process alone holds) of every process of
ours at one replica, against the budget of 600 MB for all of them together.

Counted: the five gRPC services, media_svc and Envoy. Not counted: the data tier (PostgreSQL,
Redis, the broker), Prometheus and its exporters, the launcher. Measured twice on a private mesh:
at rest after start, and at rest after one request of each kind a listener makes (first calls
load what a process only imports or allocates on use).

    python -m bench.mesh_memory
"""

from __future__ import annotations

import time

import httpx
import psutil

from bench.edge_vs_direct import login
from devdata import demo
from meshctl import mesh
from meshctl.processes import ProcessTable
from meshkit.services import PROCESSES

BUDGET_MB = 600
OURS = (*PROCESSES, "envoy")
# Long enough for start-up work (index loads, first scrapes, pools) to settle.
SETTLE_S = 5.0


def memory(target: mesh.Mesh) -> dict[str, tuple[float, float]]:
    """RSS and USS in MB of each of our processes (a process's children included)."""
    table = ProcessTable(target.layout.run_dir)
    out: dict[str, tuple[float, float]] = {}
    for name in OURS:
        started = table.get(name)
        if started is None or not started.alive():
            continue
        root = psutil.Process(started.pid)
        rss = uss = 0.0
        for proc in (root, *root.children(recursive=True)):
            info = proc.memory_full_info()
            rss += info.rss
            uss += info.uss
        out[name] = (rss / 2**20, uss / 2**20)
    return out


def one_of_each(target: mesh.Mesh) -> None:
    """A listener's first minute: profile, a track, a search, a stream start, playlists, recs."""
    token = login(target.envoy_url)["access_token"]
    with httpx.Client(
        base_url=target.envoy_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for path in (
            "/v1/me",
            f"/v1/tracks/{demo.DEMO_TRACK_ID}",
            "/v1/search?q=midnight&type=track,album,artist",
            "/v1/me/playlists",
            f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items",
            "/api/recs/discover-weekly",
            f"/api/recs/radio?seed_track_id={demo.DEMO_TRACK_ID}",
        ):
            http.get(path).raise_for_status()
        stream = http.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID}).json()
        http.get(stream["url"], headers={"range": "bytes=0-65535"}).raise_for_status()


def report(title: str, figures: dict[str, tuple[float, float]]) -> None:
    print(title)
    print(f"  {'process':14} {'RSS MB':>8} {'USS MB':>8}")
    for name, (rss, uss) in figures.items():
        print(f"  {name:14} {rss:8.1f} {uss:8.1f}")
    total = sum(rss for rss, _ in figures.values())
    print(f"  {'all':14} {total:8.1f} {sum(u for _, u in figures.values()):8.1f}")
    print(f"  budget {BUDGET_MB} MB: {total / BUDGET_MB:.2f} of it")


def main() -> None:
    with mesh.private_mesh("bench-memory-", audio_tracks=2) as running:
        time.sleep(SETTLE_S)
        report("at rest after start", memory(running))
        one_of_each(running)
        time.sleep(SETTLE_S)
        report("at rest after one request of each kind", memory(running))


if __name__ == "__main__":
    main()
