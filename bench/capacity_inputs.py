"""The figures the capacity model (bench.capacity_model, docs/scale.md) is computed from, measured on
one private mesh, written to bench/results/capacity_inputs.json.

    .venv/bin/python -m bench.capacity_inputs [--seconds 5] [--rounds 2] [--concurrency 8]

CPU per request: each public route below, driven through Envoy by closed-loop clients, with the
CPU every process of the mesh (Envoy and all six services) spent in the window, less what the
same processes spend idle over as long (measured before each round), divided by the requests
answered: what one request of that route costs the whole mesh, fan-out included. The
playback events route posts batches of 10, and is reported per event (ingest, Kafka, and the
stream counter's share of that window). Medians over the rounds.

Bytes per row: after the traffic, for each table that grows with users, tracks, plays and
playlists, PostgreSQL's own figures: the average stored tuple (`pg_column_size`) plus the tuple
header and line pointer (28 bytes), plus one index entry per index (the average width of its
columns from `pg_stats`, plus 16 bytes of index tuple header, pointer and alignment). Demo tables
are small, so sizes come from the rows' contents, not from page counts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from sqlalchemy import create_engine, text

from auth_svc.settings import AuthSettings
from bench.edge_vs_direct import Result, closed_loop, cpu_seconds, login, mesh_processes
from devdata import demo
from meshctl import mesh
from meshkit import ids
from meshkit.config import PROJECT_ROOT
from meshkit.services import PROCESSES

RESULTS = PROJECT_ROOT / "bench" / "results" / "capacity_inputs.json"
EVENTS_PER_POST = 10
# Tracks given audio (stream starts need it); every route cycles over them.
AUDIO_TRACKS = 20
# (schema.table, what one row is) for the tables that grow with the product's numbers.
TABLES = {
    "catalog.tracks": "a track",
    "catalog.search_words": "a distinct word of the catalog's names",
    "auth.users": "a user",
    "playback.listening_history": "a play in a user's history",
    "playback.counted_streams": "a counted stream (royalties)",
    "library.playlists": "a playlist",
    "library.playlist_items": "a playlist item",
    "library.saved_items": "a saved track, album or show",
    "rec.listens": "a listen rec learns from",
}


def routes(token: str, track_ids: list[str]) -> dict[str, Callable[[aiohttp.ClientSession], Awaitable[int]]]:
    """Route name -> one call (returns how many units it carried: requests, or events)."""
    tracks = itertools.cycle(track_ids)
    me = {"authorization": f"Bearer {token}"}

    async def get(http: aiohttp.ClientSession, path: str, params: dict[str, str] | None = None) -> int:
        async with http.get(path, params=params, headers=me) as reply:
            await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{path}: {reply.status}")
        return 1

    async def events(http: aiohttp.ClientSession) -> int:
        track = next(tracks)
        batch = [
            {
                "idempotency_key": uuid.uuid4().hex,
                "track_id": track,
                "event": kind,
                "position_ms": position,
                "track_duration_ms": 200_000,
                "device_type": "smartphone",
            }
            for kind, position in [
                ("start", 0),
                *(("progress", 5_000 * i) for i in range(1, 8)),
                ("pause", 36_000),
                ("complete", 40_000),
            ]
        ][:EVENTS_PER_POST]
        async with http.post("/api/playback/events", json={"events": batch}, headers=me) as reply:
            await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"events: {reply.status}")
        return EVENTS_PER_POST

    return {
        "catalog: GET /v1/tracks/{id}": lambda http: get(http, f"/v1/tracks/{next(tracks)}"),
        "playback: GET /api/playback/stream (stream start)": lambda http: get(
            http, "/api/playback/stream", {"track_id": next(tracks)}
        ),
        "library: GET /v1/playlists/{id}/items": lambda http: get(
            http, f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items", {"limit": "50"}
        ),
        "auth: GET /v1/me": lambda http: get(http, "/v1/me"),
        "rec: GET /v1/recommendations": lambda http: get(
            http, "/v1/recommendations", {"seed_tracks": next(tracks), "limit": "20"}
        ),
        "playback: POST /api/playback/events (per event)": events,
    }


async def measure_route(
    target: mesh.Mesh,
    call: Callable[[aiohttp.ClientSession], Awaitable[int]],
    name: str,
    seconds: float,
    concurrency: int,
    processes: dict[str, psutil.Process],
) -> tuple[Result, int]:
    per_call = 1  # units one call carries (a route's calls all carry the same)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(target.envoy_url, connector=connector) as http:

        async def once() -> None:
            nonlocal per_call
            per_call = await call(http)

        result = await closed_loop(name, concurrency, seconds, once, processes)
    # Only the calls answered inside the measured window, which is when the CPU was counted.
    return result, max(len(result.latencies_s) * per_call, 1)


def idle_cpu_per_s(processes: dict[str, psutil.Process], seconds: float) -> float:
    before, started = sum(cpu_seconds(processes).values()), time.perf_counter()
    time.sleep(seconds)
    return (sum(cpu_seconds(processes).values()) - before) / (time.perf_counter() - started)


def row_bytes(database_url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(database_url)
    found: dict[str, dict[str, Any]] = {}
    try:
        with engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"ANALYZE {table}"))
            for table, meaning in TABLES.items():
                schema, name = table.split(".")
                counted: Any = conn.execute(
                    text(f"SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0) FROM {table} t")
                ).one()
                rows, tuple_bytes = int(counted[0]), float(counted[1])
                indexes = conn.execute(
                    text(
                        "SELECT i.indexrelid::regclass::text,"
                        " coalesce(sum(s.avg_width), 8)"
                        " FROM pg_index i"
                        " JOIN pg_class c ON c.oid = i.indrelid"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
                        " LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname"
                        "  AND s.attname = a.attname"
                        " WHERE n.nspname = :schema AND c.relname = :name"
                        " GROUP BY i.indexrelid"
                    ),
                    {"schema": schema, "name": name},
                ).all()
                index_bytes = sum(int(str(width)) + 16 for _, width in indexes)
                found[table] = {
                    "row": meaning,
                    "rows_measured": rows,
                    "heap_bytes": round(tuple_bytes + 28, 1),
                    "index_bytes": index_bytes,
                    "indexes": len(indexes),
                    "bytes": round(tuple_bytes + 28 + index_bytes, 1),
                }
    finally:
        engine.dispose()
    return found


def unlimited(directory: Path) -> Path:
    """auth_svc's rate-limit table with every limit raised out of reach: the benchmark measures
    what a request costs, not the per-user limits (which would answer 429 within a second)."""
    text, changed = re.subn(
        r"(?m)^(limit\s*=\s*)\d+", r"\g<1>100000000", AuthSettings().ratelimit_config.read_text()
    )
    if not changed:
        raise SystemExit("no limit found in auth_svc's rate-limit table")
    path = directory / "ratelimits-unlimited.toml"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity_inputs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    limits_dir = Path(tempfile.mkdtemp(prefix="bench-capacity-limits-"))
    os.environ["AUTH_RATELIMIT_CONFIG"] = str(unlimited(limits_dir))
    os.environ["AUTH_RATELIMIT_KEY_PREFIX"] = f"ratelimit-capacity-{uuid.uuid4().hex[:8]}"
    with mesh.private_mesh("bench-capacity-", audio_tracks=AUDIO_TRACKS) as target:
        token = login(target.envoy_url)["access_token"]
        track_ids = [ids.encode(track) for track in demo.audio_order(demo.DEMO_AUDIO_TRACKS)[:AUDIO_TRACKS]]
        processes = mesh_processes(target, ("envoy", *PROCESSES))
        measured: dict[str, list[float]] = {}
        rates: dict[str, list[float]] = {}
        idle_rates: list[float] = []
        by_process: dict[str, list[dict[str, float]]] = {}
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} of {args.rounds} ...", flush=True)
            # What the mesh burns with no request (consumers polling, health checks, relays), per
            # second: subtracted, so a route is charged only for what its requests cost.
            idle = idle_cpu_per_s(processes, args.seconds)
            idle_rates.append(idle)
            for name, call in routes(token, track_ids).items():
                result, units = asyncio.run(
                    measure_route(target, call, name, args.seconds, args.concurrency, processes)
                )
                if result.errors:
                    raise SystemExit(f"{name}: {result.errors} errors")
                busy = sum(result.server_cpu_s.values()) - idle * result.elapsed_s
                measured.setdefault(name, []).append(max(busy, 0.0) / units * 1000)
                by_process.setdefault(name, []).append(
                    {process: spent / units * 1000 for process, spent in result.server_cpu_s.items()}
                )
                rates.setdefault(name, []).append(units / result.elapsed_s)
        # A saved track per audio track, so that saved_items has rows to measure.
        uris = ",".join(f"spotify:track:{track}" for track in track_ids)
        with httpx.Client(base_url=target.envoy_url, timeout=10) as http:
            saved = http.put(
                "/v1/me/library", params={"uris": uris}, headers={"authorization": f"Bearer {token}"}
            )
            saved.raise_for_status()
        sizes = row_bytes(target.database_url)
        unmeasured = [table for table, size in sizes.items() if size["rows_measured"] == 0]
        if unmeasured:
            raise SystemExit(f"no rows to measure in {', '.join(unmeasured)}")
    figures: dict[str, Any] = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "cpu_ms_per_unit": {name: round(statistics.median(values), 3) for name, values in measured.items()},
        "idle_cpu_s_per_s": round(statistics.median(idle_rates), 3),
        "cpu_ms_per_unit_by_process": {
            name: {process: round(statistics.median(run[process] for run in runs), 3) for process in runs[0]}
            for name, runs in by_process.items()
        },
        "units_per_s_on_this_machine": {name: round(statistics.median(v)) for name, v in rates.items()},
        "bytes_per_row": sizes,
    }
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for name, value in figures["cpu_ms_per_unit"].items():
        print(f"{name:<52} {value:>8.3f} CPU ms  ({1000 / value:>7.0f} per core-second)")
    for table, size in sizes.items():
        print(f"{table:<32} {size['bytes']:>8.1f} B/row  ({size['rows_measured']} rows measured)")
    print(f"idle mesh: {figures['idle_cpu_s_per_s']:.3f} CPU s per s (subtracted)")
    print(f"written to {args.out.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
