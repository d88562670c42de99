"""Fixtures for rec_svc: a synthetic world loaded into the real test database, a batch-built
index version, and rec_svc served in-process over real gRPC against a fake catalog.

One world, one build and one server serve every rec test module (session scope): building
is the expensive part, and the tests only read from it, except the ones that add tracks or
swap versions, which use ids and versions of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.playback.v1 import playback_pb2
from spotify.rec.v1 import rec_pb2_grpc

from devdata.rec_world import SyntheticConfig, World, generate
from meshkit import db, ids
from meshkit.config import Settings
from meshkit.server import start_server
from rec_svc import batch
from rec_svc.clients import Catalog
from rec_svc.consumers import EventApplier
from rec_svc.holder import IndexHolder
from rec_svc.server import RecRuntime, make_setup
from rec_svc.settings import RecSettings
from rec_svc.store import RecStore
from tests.rec_svc.rec_fakes import CatalogData, start_fake_catalog

NOW = datetime.now(UTC).replace(microsecond=0)
WORLD = SyntheticConfig(
    n_genres=6,
    n_artists=36,
    n_tracks=360,
    n_users=120,
    n_playlists=0,
    days=35,
    plays_per_day=3.0,
    seed=11,
    start=NOW - timedelta(days=35),
)


@dataclass
class RecEnv:
    world: World
    catalog: CatalogData
    settings: Settings
    rec: RecSettings
    runtime: RecRuntime
    channel: aio.Channel
    version: str

    @property
    def stub(self) -> rec_pb2_grpc.RecommendationServiceStub:
        return rec_pb2_grpc.RecommendationServiceStub(self.channel)

    def plays_of(self, user: uuid.UUID, since: datetime) -> set[uuid.UUID]:
        """Tracks the user streamed since `since`, from the world's ground truth.

        This fixture loads only the world's counted streams (>= 30 s) into rec; its skips are
        left out (test_rec_consumers.py covers skips arriving from playback.events.v1), so
        "heard" is what a counted stream says was heard.
        """
        inter = self.world.interactions
        u = self.world.user_ids.index(user)
        mask = (inter.user_idx == u) & (inter.ts >= since.timestamp()) & (inter.weight > 0)
        return {inter.tracks[t] for t in inter.track_idx[mask].tolist()}


def user_metadata(user: uuid.UUID, *roles: str) -> tuple[tuple[str, str], ...]:
    return (("x-user-id", ids.encode(user)), ("x-user-roles", ",".join(roles or ("user",))))


def stream_events(world: World) -> list[bytes]:
    """The world's history as counted-stream events (skips are not counted streams: left out)."""
    inter = world.interactions
    out = []
    for i in range(len(inter)):
        if inter.weight[i] <= 0:
            continue
        track = world.tracks[int(inter.track_idx[i])]
        at = Timestamp()
        at.FromSeconds(int(inter.ts[i]))
        out.append(
            playback_pb2.StreamCountedEvent(
                stream_id=f"rec-test-{WORLD.seed}-{i}",
                user_id=ids.encode(world.user_ids[int(inter.user_idx[i])]),
                track_id=ids.encode(track.track_id),
                artist_ids=[ids.encode(a) for a in track.artist_ids],
                counted_at=at,
                played_ms=30_000,
            ).SerializeToString()
        )
    return out


@pytest.fixture(scope="session")
async def rec_env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RecEnv]:
    world = generate(WORLD)
    data = CatalogData.of(world)
    async with AsyncExitStack() as stack:
        catalog_addr = await start_fake_catalog(data, stack)
        settings = Settings(
            database_url=database_url, catalog_addr=catalog_addr, listen_addr="127.0.0.1:0", metrics_port=-1
        )
        rec = RecSettings(
            index_dir=Path(tmp_path_factory.mktemp("rec-indexes")),
            consumers=False,
            reload_poll_s=0,
            build_threads=1,
        )
        # The history goes in through the consumer's own code path, as streams.counted.v1 would bring it.
        engine = db.create_engine(database_url, pool_size=1)
        stack.push_async_callback(engine.dispose)
        applier = EventApplier(RecStore(db.session_factory(engine)), Catalog(None), IndexHolder())  # type: ignore[arg-type]
        events = stream_events(world)
        for i in range(0, len(events), 2000):
            await applier.apply_streams(events[i : i + 2000])
        summary = await batch.build(settings, rec, reload=False, now=NOW)
        ready: list[RecRuntime] = []
        running = await start_server("rec_svc", make_setup(rec, on_ready=ready.append), settings, stack)
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
        stack.push_async_callback(channel.close)
        yield RecEnv(world, data, settings, rec, ready[0], channel, summary["version"])
