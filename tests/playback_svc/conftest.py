"""Fixtures for playback_svc: the service in-process on the test database, a private Redis
database and the test broker, with fake catalog/auth neighbours over real gRPC, real Ogg files
for the media origin, and helpers to report events as a user and poll the database.

One in-process server (and so one consumer group join, about 5 s on tansu) serves every test
module here; its counter group id is unique to the run. Redis is a database of its own (not the
shared test db 1) because the counter tests FLUSHDB it.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from meshkit.config import Settings
from meshkit.server import start_server
from playback_svc.counter.runner import CounterRunner
from playback_svc.server import make_setup
from playback_svc.settings import PlaybackSettings
from tests.playback_svc.fakes import Neighbours, start_neighbours
from tests.playback_svc.helpers import user_metadata

PRIVATE_REDIS_DB = 13
PUBLIC_BASE_URL = "http://media.test"
# libsndfile's Vorbis quality per nominal bitrate (measured by catalog's encoder: 0.5 → 160 kbps).
COMPRESSION_LEVELS = {96: 0.8, 160: 0.5, 320: 0.1}


@pytest.fixture(scope="session")
def neighbours() -> Iterator[Neighbours]:
    running = start_neighbours()
    yield running
    running.server.stop(grace=None)


@pytest.fixture(scope="session")
def private_redis_url(redis_url: str) -> str:
    base, _, _db = redis_url.rpartition("/")
    return f"{base}/{PRIVATE_REDIS_DB}"


def ogg_vorbis(seconds: float, kbps: int, seed: int) -> bytes:
    """A real Ogg Vorbis file: tones plus noise, so it does not compress to nothing."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(44100 * seconds)) / 44100
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], axis=1)
    signal = (tones + 0.1 * rng.standard_normal(tones.shape)).astype("float32")
    buf = io.BytesIO()
    sf.write(buf, signal, 44100, format="OGG", subtype="VORBIS", compression_level=COMPRESSION_LEVELS[kbps])
    return buf.getvalue()


@dataclass(frozen=True)
class MediaTrack:
    """A track with real files at 96/160/320 kbps under the test storage root."""

    track_id: str
    root: Path
    files: dict[int, bytes]


@pytest.fixture(scope="session")
def media_track(tmp_path_factory: pytest.TempPathFactory, neighbours: Neighbours) -> MediaTrack:
    root = tmp_path_factory.mktemp("objects")
    (root / "tracks").mkdir()
    track_id = neighbours.catalog.add_track(duration_ms=6_000, artists=2, name="Media Test")
    files: dict[int, bytes] = {}
    entries = []
    for seed, kbps in enumerate((96, 160, 320)):
        files[kbps] = ogg_vorbis(6.0, kbps, seed)
        path, seek = f"tracks/{track_id}_{kbps}kbps.ogg", f"tracks/{track_id}_{kbps}kbps.seek.json"
        (root / path).write_bytes(files[kbps])
        (root / seek).write_text(json.dumps({"interval_ms": 1000, "points": [[0, 0]]}))
        entries.append((kbps, path, seek))
    neighbours.catalog.set_files(track_id, entries)
    return MediaTrack(track_id, root, files)


@dataclass
class Playback:
    """The in-process playback_svc."""

    port: int
    stub: playback_pb2_grpc.PlaybackServiceStub
    runner: CounterRunner
    settings: Settings
    own: PlaybackSettings

    async def report(self, user_id: str, events: list[dict[str, Any]], product: str = "premium") -> Any:
        """ReportPlaybackEvents as ``user_id``; each dict holds ClientPlaybackEvent fields."""
        request = playback_pb2.ReportPlaybackEventsRequest(
            events=[playback_pb2.ClientPlaybackEvent(**event) for event in events]
        )
        metadata = user_metadata(user_id, product)
        return await self.stub.ReportPlaybackEvents(request, metadata=metadata, timeout=10)


@pytest.fixture(scope="session")
async def playback(
    database_url: str,
    private_redis_url: str,
    kafka_bootstrap: str,
    neighbours: Neighbours,
    media_track: MediaTrack,
) -> AsyncIterator[Playback]:
    settings = Settings(
        database_url=database_url,
        redis_url=private_redis_url,
        kafka_bootstrap=kafka_bootstrap,
        catalog_addr=neighbours.address,
        auth_addr=neighbours.address,
        library_addr=neighbours.address,
        listen_addr="127.0.0.1:0",
        public_base_url=PUBLIC_BASE_URL,
        storage_root=media_track.root,
    )
    own = PlaybackSettings(counter_group=f"test-counter-{uuid.uuid4().hex[:10]}")
    runners: list[CounterRunner] = []
    async with AsyncExitStack() as stack:
        running = await start_server(
            "playback_svc", make_setup(own, on_counter=runners.append), settings, stack
        )
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
        stack.push_async_callback(channel.close)
        stub = playback_pb2_grpc.PlaybackServiceStub(channel)
        yield Playback(running.port, stub, runners[0], settings, own)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()
