"""Shared set-up for the playback benchmarks: a private data tier or mesh, a catalog stand-in,
real Ogg files, and percentile maths.

catalog_svc does not list audio files yet (ListTrackAudioFiles answers UNIMPLEMENTED while its
ingest is being wired), so when the mesh's catalog cannot give the demo track's files, the
stream-start benchmark swaps in a small CatalogService that serves the real catalog's track
object plus files this module encodes (real Ogg Vorbis at 96/160/320 kbps under the mesh's
storage root) and restarts playback_svc pointed at it. Everything else is the real mesh.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import soundfile as sf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshctl import datatier, mesh
from meshctl.processes import ProcessTable
from meshkit import ids
from meshkit.config import PROJECT_ROOT

COMPRESSION_LEVELS = {96: 0.8, 160: 0.5, 320: 0.1}
QUALITY = {
    96: catalog_pb2.AUDIO_QUALITY_LOW,
    160: catalog_pb2.AUDIO_QUALITY_NORMAL,
    320: catalog_pb2.AUDIO_QUALITY_HIGH,
}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 (ms) of latencies given in seconds."""
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49] * 1000, "p95": qs[94] * 1000, "p99": qs[98] * 1000}


def ogg_vorbis(seconds: float, kbps: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(44100 * seconds)) / 44100
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], axis=1)
    signal = (tones + 0.1 * rng.standard_normal(tones.shape)).astype("float32")
    buf = io.BytesIO()
    sf.write(buf, signal, 44100, format="OGG", subtype="VORBIS", compression_level=COMPRESSION_LEVELS[kbps])
    return buf.getvalue()


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


def write_audio(root: Path, track_id: str, seconds: float = 20.0) -> list[catalog_pb2.AudioFile]:
    """Real Ogg Vorbis renditions under ``root/tracks`` and the AudioFile rows that name them."""
    (root / "tracks").mkdir(parents=True, exist_ok=True)
    files = []
    for kbps in (96, 160, 320):
        data = ogg_vorbis(seconds, kbps, seed=kbps)
        path, seek = f"tracks/{track_id}_{kbps}kbps.ogg", f"tracks/{track_id}_{kbps}kbps.seek.json"
        (root / path).write_bytes(data)
        (root / seek).write_text('{"interval_ms": 1000, "points": [[0, 0]]}')
        files.append(
            catalog_pb2.AudioFile(
                track_id=track_id,
                quality=QUALITY[kbps],
                codec="vorbis",
                bitrate_kbps=kbps,
                size_bytes=len(data),
                storage_path=path,
                seek_index_path=seek,
                duration_ms=int(seconds * 1000),
            )
        )
    return files


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


def wait_serving(address: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{address} not SERVING after {timeout}s")


def restart_playback(running: mesh.Mesh, procs: ProcessTable, **env: str) -> None:
    """Restart the mesh's playback_svc with extra environment (e.g. CATALOG_ADDR of a stand-in)."""
    procs.stop("playback_svc")
    layout = running.layout
    full = {
        **running.service_env(),
        "LISTEN_ADDR": f"127.0.0.1:{layout.ports['playback_svc']}",
        "METRICS_PORT": str(layout.metrics_ports["playback_svc"]),
        **env,
    }
    procs.spawn("playback_svc", [sys.executable, "-m", "playback_svc"], env=full, cwd=PROJECT_ROOT)
    wait_serving(f"127.0.0.1:{layout.ports['playback_svc']}")


def env_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
