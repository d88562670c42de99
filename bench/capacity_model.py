"""The capacity model of docs/scale.md: cores, replicas, partitions, shards and sizes for 500M
users and 100M tracks, computed from figures this repository measures.

    .venv/bin/python -m bench.capacity_model            # print the tables
    .venv/bin/python -m bench.capacity_model --write    # and refresh them in docs/scale.md

Inputs: bench/results/capacity_inputs.json (python -m bench.capacity_inputs: CPU per request of
each route through Envoy, bytes per row of each growing table) and bench/results/hnswlib-1m-5m.json
(hnswlib at 1M and 5M vectors on this kind of machine). Traffic is the assumptions below, stated
once; everything else follows from them and the measurements, so re-running the benchmarks and
then this script refreshes the document.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2

from meshkit.config import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results"
SCALE_DOC = PROJECT_ROOT / "docs" / "scale.md"
BEGIN, END = "<!-- capacity-model:begin -->", "<!-- capacity-model:end -->"

# ---- assumptions (Spotify-like traffic; each is a number to argue with, not a measurement) ----
USERS = 500_000_000
TRACKS = 100_000_000
DAILY_ACTIVE_SHARE = 0.4  # of users, on a given day
PEAK_TO_MEAN = 2.5  # the busiest hour's rate over the day's mean
CPU_TARGET = 0.6  # utilisation a tier is sized for: a zone lost, a spike absorbed
CORES_PER_POD = 2
# Per daily active user per day.
PER_DAU = {
    "playback: GET /api/playback/stream (stream start)": 40,  # ~2.3 h at 3.5 min a track
    "catalog: GET /v1/tracks/{id}": 120,  # now playing, queue, album and artist pages
    "library: GET /v1/playlists/{id}/items": 15,
    "rec: GET /v1/recommendations": 8,
    "auth: GET /v1/me": 10,
    "playback: POST /api/playback/events (per event)": 40 * 6,  # start, progress x4, end
}
HISTORY_DAYS = 90  # listening history kept hot for "recently played" and rec inputs
ROYALTY_MONTHS = 13  # counted streams kept until the year's statements are final
PLAYLISTS = 4_000_000_000
ITEMS_PER_PLAYLIST = 40
SAVED_PER_USER = 200
KAFKA_RETENTION_DAYS = 7
KAFKA_REPLICATION = 3
# rec: every recommendation request is one ANN query over every shard of the track index.
ANN_REPLICAS = 2
RECALL_FLOOR = 0.95


@dataclass(frozen=True)
class Row:
    tier: str
    figure: str
    value: str
    from_what: str


def load() -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = json.loads((RESULTS / "capacity_inputs.json").read_text())
    ann = json.loads((RESULTS / "hnswlib-1m-5m.json").read_text())
    return inputs, ann


def _n(value: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def _bytes(value: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def event_bytes() -> int:
    """A typical playback event as it travels on playback.events.v1 (measured by serialising one)."""
    event = playback_pb2.PlaybackEvent(
        event_id="0f8fad5b-d9cb-469f-a165-70867728950e",
        idempotency_key="5b3f0a7e9c1d4e2f8a6b7c8d9e0f1a2b",
        user_id="6rqhFgbbKwnb9MLmUQDhG6",
        product="premium",
        country="SE",
        track_id="4iV5W9uYEdYUVa79Axb7Rh",
        event_type=playback_pb2.PlaybackEvent.EVENT_TYPE_PROGRESS,
        position_ms=123_456,
        track_duration_ms=215_000,
        device_id="car-1",
        device_type="smartphone",
        context_uri="spotify:playlist:37i9dQZF1DXcBWIGoYBM5M",
    )
    event.client_timestamp.CopyFrom(Timestamp(seconds=1_790_000_000, nanos=123_000_000))
    event.received_at.CopyFrom(Timestamp(seconds=1_790_000_001, nanos=456_000_000))
    return event.ByteSize()


def model(inputs: dict[str, Any], ann: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    dau = USERS * DAILY_ACTIVE_SHARE
    cpu = inputs["cpu_ms_per_unit"]
    total_cores = 0.0
    for route, per_day in PER_DAU.items():
        mean = dau * per_day / 86_400
        peak = mean * PEAK_TO_MEAN
        cores = peak * cpu[route] / 1000 / CPU_TARGET
        total_cores += cores
        rows.append(
            Row(
                "edge + services",
                f"{route}: {_n(peak)}/s at peak",
                f"{_n(cores)} cores",
                f"{cpu[route]:.2f} CPU ms per unit across Envoy and every service (measured)",
            )
        )
    pods = math.ceil(total_cores / CORES_PER_POD)
    rows.append(
        Row(
            "edge + services",
            "all routes above",
            f"{_n(total_cores)} cores, ~{_n(pods)} pods of {CORES_PER_POD} cores",
            f"sized for {CPU_TARGET:.0%} CPU; split per service in proportion to each route's measured CPU",
        )
    )

    # Kafka: playback events, the one high-rate topic.
    events_peak = dau * PER_DAU["playback: POST /api/playback/events (per event)"] / 86_400 * PEAK_TO_MEAN
    events_route = "playback: POST /api/playback/events (per event)"
    # playback_svc's share of an event (its servicer's produce and its stream counter's count):
    # an upper bound of what the consumer of a partition spends on one.
    per_event_ms = inputs["cpu_ms_per_unit_by_process"][events_route]["playback_svc"]
    per_partition = 1000 / per_event_ms * CPU_TARGET  # one consumer (one core) per partition
    partitions = 2 ** math.ceil(math.log2(events_peak / per_partition))
    size = event_bytes()
    events_mean = events_peak / PEAK_TO_MEAN
    disk = events_mean * 86_400 * KAFKA_RETENTION_DAYS * size * KAFKA_REPLICATION
    rows.append(
        Row(
            "Kafka",
            f"playback.events.v1 partitions ({_n(events_peak)} events/s at peak)",
            f"{partitions:,}",
            f"one consumer core per partition handles {per_partition:,.0f} events/s at {CPU_TARGET:.0%} "
            f"({per_event_ms:.3f} CPU ms per event in playback_svc, produce and count, measured); "
            "rounded up to a power of two",
        )
    )
    rows.append(
        Row(
            "Kafka",
            f"playback.events.v1 disk ({KAFKA_RETENTION_DAYS} days, replication {KAFKA_REPLICATION})",
            _bytes(disk),
            f"{size} B per event (a serialised PlaybackEvent, measured), before compression",
        )
    )

    # PostgreSQL: the growing tables.
    sizes = inputs["bytes_per_row"]
    plays_per_day = dau * PER_DAU["playback: GET /api/playback/stream (stream start)"]
    stores = [
        ("catalog.tracks", TRACKS, "100M tracks"),
        ("auth.users", USERS, "500M users"),
        (
            "library.playlists",
            PLAYLISTS,
            f"{_n(PLAYLISTS)} playlists (Spotify's published order of magnitude)",
        ),
        (
            "library.playlist_items",
            PLAYLISTS * ITEMS_PER_PLAYLIST,
            f"{ITEMS_PER_PLAYLIST} items per playlist",
        ),
        ("library.saved_items", USERS * SAVED_PER_USER, f"{SAVED_PER_USER} saved items per user"),
        ("playback.listening_history", plays_per_day * HISTORY_DAYS, f"every play, {HISTORY_DAYS} days"),
        (
            "playback.counted_streams",
            plays_per_day * 0.8 * 30 * ROYALTY_MONTHS,
            f"80 % of plays pass 30 s, {ROYALTY_MONTHS} months",
        ),
        ("rec.listens", plays_per_day * 0.8 * 28, "counted plays of the 28-day window rec learns from"),
    ]
    for table, count, why in stores:
        per_row = sizes[table]["bytes"]
        rows.append(
            Row(
                "PostgreSQL",
                f"{table}: {_n(count)} rows",
                _bytes(count * per_row),
                f"{per_row:,.0f} B per row with its {sizes[table]['indexes']} indexes (measured); {why}",
            )
        )

    # rec: the track index.
    best: dict[int, tuple[int, float, int]] = {}
    for run in ann["runs"]:
        meeting = [e for e in run["ef"] if e["recall_at_10"] >= RECALL_FLOOR]
        cheapest = min(meeting, key=lambda e: e["ef"])
        best[run["n"]] = (cheapest["ef"], cheapest["recall_at_10"], cheapest["qps_1_thread"])
    rec_peak = dau * PER_DAU["rec: GET /v1/recommendations"] / 86_400 * PEAK_TO_MEAN
    for run in ann["runs"]:
        n = run["n"]
        ef, recall, qps = best[n]
        shards = math.ceil(TRACKS / n)
        cores = rec_peak * shards / qps / CPU_TARGET
        memory = TRACKS * run["rss_bytes_per_vector"] * ANN_REPLICAS
        rows.append(
            Row(
                "rec (hnswlib)",
                f"{shards} shards of {_n(n)} vectors, ef {ef} (recall {recall:.3f})",
                f"{_n(cores)} query cores, {_bytes(memory)} RAM ({ANN_REPLICAS} copies)",
                f"{qps:,} queries/s per thread at that ef, every query on every shard "
                f"({_n(rec_peak)}/s at peak); {run['rss_bytes_per_vector']:.0f} B/vector (measured)",
            )
        )
        rows.append(
            Row(
                "rec (hnswlib)",
                f"index build, {shards} shards of {_n(n)}",
                f"{_n(shards * run['build_s_all_threads'] / 3600)} core-pair hours",
                f"{run['build_s_all_threads']:.0f} s per shard on 2 threads (measured); shards build "
                "in parallel",
            )
        )
    return rows


def render(rows: list[Row], inputs: dict[str, Any]) -> str:
    lines = [
        f"Computed by `python -m bench.capacity_model` from `bench/results/` (inputs measured "
        f"{inputs['measured_at']} on {inputs['machine']['cpus']} cores).",
        "",
        "| tier | figure | value | from what |",
        "|---|---|---|---|",
        *(f"| {r.tier} | {r.figure} | {r.value} | {r.from_what} |" for r in rows),
    ]
    return "\n".join(lines)


def write(table: str, path: Path = SCALE_DOC) -> None:
    text = path.read_text()
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    path.write_text(f"{before}{BEGIN}\n{table}\n{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity_model", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--write", action="store_true", help="refresh the table in docs/scale.md")
    args = parser.parse_args()
    inputs, ann = load()
    table = render(model(inputs, ann), inputs)
    print(table)
    if args.write:
        write(table)
        print(f"\nwritten to {SCALE_DOC.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
