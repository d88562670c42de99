"""Fixtures for playback_svc: the service in-process on the test database, a private Redis
database and the test broker, against the mesh's real catalog_svc, auth_svc and library_svc
(`data.py` writes the tracks and accounts a test needs into them), with real audio ingested
by catalog_svc for the media origin, and helpers to report events as a user and poll the database.

One in-process server (and so one consumer group join, about 5 s on tansu) serves every test
module here; its counter group id is unique to the run. The mesh's own playback_svc counts the
same topic in its own group: both write through the unique idempotency key, so every count the
tests assert stays exact whichever counter gets there first. Redis is a database of its own (not
the shared test db 1) because the counter tests FLUSHDB it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from meshctl.mesh import Mesh
from meshkit.config import Settings
from meshkit.server import start_server
from playback_svc.counter.runner import CounterRunner
from playback_svc.server import make_setup
from playback_svc.settings import PlaybackSettings
from tests.playback_svc.data import CatalogWriter
from tests.playback_svc.helpers import user_metadata

PRIVATE_REDIS_DB = 13
PUBLIC_BASE_URL = "http://media.test"
MEDIA_SECONDS = 6.0


@pytest.fixture(scope="session")
def private_redis_url(redis_url: str) -> str:
    base, _, _db = redis_url.rpartition("/")
    return f"{base}/{PRIVATE_REDIS_DB}"


@pytest.fixture(scope="session")
async def catalog_stub(running_mesh: Mesh) -> AsyncIterator[catalog_pb2_grpc.CatalogServiceStub]:
    """The mesh's catalog_svc, on its own port (as another service reaches it)."""
    async with aio.insecure_channel(
        f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}"
    ) as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


@pytest.fixture(scope="session")
def catalog_writer(running_mesh: Mesh, catalog_stub: catalog_pb2_grpc.CatalogServiceStub) -> CatalogWriter:
    return CatalogWriter(running_mesh.database_url, catalog_stub)


@dataclass(frozen=True)
class MediaTrack:
    """A catalog track with real audio ingested by catalog_svc: its files at 96/160/320 kbps."""

    track_id: str
    root: Path
    files: dict[int, bytes]
    duration_ms: int


@pytest.fixture(scope="session")
async def media_track(running_mesh: Mesh, catalog_writer: CatalogWriter) -> MediaTrack:
    track_id = await catalog_writer.track(name="Media Test")
    await catalog_writer.ingest(track_id, seconds=MEDIA_SECONDS)
    root = running_mesh.layout.storage_root
    files = {
        f.bitrate_kbps: (root / f.storage_path).read_bytes()
        for f in await catalog_writer.audio_files(track_id)
        if f.bitrate_kbps in (96, 160, 320) and f.storage_path.endswith("kbps.ogg")
    }
    assert sorted(files) == [96, 160, 320]
    track = await catalog_writer.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id))
    assert abs(track.duration_ms - MEDIA_SECONDS * 1000) <= 50  # measured by ingest
    return MediaTrack(track_id, root, files, track.duration_ms)


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
    running_mesh: Mesh, private_redis_url: str, kafka_bootstrap: str
) -> AsyncIterator[Playback]:
    ports = running_mesh.layout.internal_ports
    settings = Settings(
        database_url=running_mesh.database_url,
        redis_url=private_redis_url,
        kafka_bootstrap=kafka_bootstrap,
        catalog_addr=f"127.0.0.1:{ports['catalog_svc']}",
        auth_addr=f"127.0.0.1:{ports['auth_svc']}",
        library_addr=f"127.0.0.1:{ports['library_svc']}",
        listen_addr="127.0.0.1:0",
        public_base_url=PUBLIC_BASE_URL,
        storage_root=running_mesh.layout.storage_root,
        user_deletions=False,  # the mesh's playback_svc takes part in deletions, not this one
    )
    own = PlaybackSettings(counter_group=f"test-counter-{uuid.uuid4().hex[:10]}")
    runners: list[CounterRunner] = []
    async with AsyncExitStack() as stack:
        running = await start_server(
            "playback_svc", make_setup(own, on_counter=runners.append), settings, stack
        )
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.internal_port}")
        stack.push_async_callback(channel.close)
        stub = playback_pb2_grpc.PlaybackServiceStub(channel)
        yield Playback(running.port, stub, runners[0], settings, own)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()
