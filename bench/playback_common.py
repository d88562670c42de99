"""Shared set-up for benchmarks that need part of the mesh: a private data tier, a catalog
stand-in (a small CatalogService serving synthetic track objects, for benchmarks that measure
one service without catalog_svc's own cost), and percentile maths.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshctl import datatier
from meshctl.processes import ProcessTable
from meshkit import ids


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 (ms) of latencies given in seconds."""
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49] * 1000, "p95": qs[94] * 1000, "p99": qs[98] * 1000}


class StandInCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    """Tracks and their audio files, served over real gRPC from a thread pool."""

    def __init__(self) -> None:
        self.tracks: dict[str, catalog_pb2.Track] = {}
        self.files: dict[str, list[catalog_pb2.AudioFile]] = {}

    def add(self, track: catalog_pb2.Track, files: list[catalog_pb2.AudioFile] | None = None) -> None:
        self.tracks[track.id] = track
        self.files[track.id] = files or []

    def BatchGetTracks(self, request, context):
        wanted = [t for t in request.ids.split(",") if t]
        return catalog_pb2.BatchGetTracksResponse(tracks=[self.tracks[t] for t in wanted if t in self.tracks])

    def GetTrack(self, request, context):
        track = self.tracks.get(request.id)
        if track is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "track not found")
        return track

    def ListTrackAudioFiles(self, request, context):
        if request.track_id not in self.tracks:
            context.abort(grpc.StatusCode.NOT_FOUND, "track not found")
        return catalog_pb2.ListTrackAudioFilesResponse(audio_files=self.files[request.track_id])


@contextmanager
def serve_catalog(catalog: StandInCatalog) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(catalog, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def synthetic_track(duration_ms: int = 180_000, artists: int = 2) -> catalog_pb2.Track:
    track_id = ids.encode(uuid.uuid4())
    return catalog_pb2.Track(
        id=track_id,
        name="Bench Track",
        duration_ms=duration_ms,
        type="track",
        uri=f"spotify:track:{track_id}",
        artists=[catalog_pb2.Artist(id=ids.encode(uuid.uuid4()), type="artist") for _ in range(artists)],
    )


@dataclass
class DataTier:
    run_dir: Path
    procs: ProcessTable
    database_url: str
    database: str
    redis_url: str
    kafka_bootstrap: str


@contextmanager
def data_tier(redis_db: int = 14) -> Iterator[DataTier]:
    """A fresh database (dropped afterwards), Redis and a private tansu broker with the topics."""
    from meshkit.kafka import ensure_topics
    from meshkit.migrate import upgrade_all

    run_dir = Path(tempfile.mkdtemp(prefix="bench-playback-"))
    procs = ProcessTable(run_dir)
    name = f"bench_playback_{uuid.uuid4().hex[:8]}"
    database_url = datatier.start_postgres(run_dir, procs, name)
    try:
        upgrade_all(database_url)
        redis_url = datatier.start_redis(run_dir, procs, db=redis_db)
        kafka = datatier.start_kafka(run_dir, procs, datatier.free_port())
        ensure_topics(kafka)
        yield DataTier(run_dir, procs, database_url, name, redis_url, kafka)
    finally:
        for started in reversed(procs.all()):
            if started.name == "postgres":
                datatier.stop_postgres(procs)
            else:
                procs.stop(started.name)
        datatier.drop_database(datatier.with_database(database_url, "postgres"), name)


def env_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
