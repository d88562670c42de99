"""Fixtures for rec_svc: a synthetic world in a database of its own, served by a real catalog_svc
(started in-process on that database) and read by rec_svc, also in-process over real gRPC; a
batch-built index version.

The world's catalog goes in through catalog_svc's seed entry point (devdata.rec_world.catalog);
its history through rec's own consumer code path. The database is the world's alone, so rec's
catalog enumeration sees exactly the world (not the demo catalog the mesh serves), and the
world's genres are the catalog's. `WorldCatalog` is the tests' ground truth about that catalog.

One world, one build and one server serve every rec test module (session scope): building
is the expensive part, and the tests only read from it, except the ones that add tracks or
swap versions, which use ids and versions of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from prometheus_client import REGISTRY
from spotify.catalog.v1 import catalog_pb2_grpc
from spotify.playback.v1 import playback_pb2
from spotify.rec.v1 import rec_pb2_grpc

from catalog_svc import seed as catalog_seed
from catalog_svc.server import make_setup as catalog_setup
from catalog_svc.settings import CatalogSettings
from devdata import rec_world
from devdata.rec_world import SyntheticConfig, World, generate
from meshctl import datatier
from meshkit import db, ids
from meshkit.config import Settings
from meshkit.metrics import http_route
from meshkit.migrate import upgrade
from meshkit.server import start_server
from rec_svc import batch
from rec_svc.clients import Catalog
from rec_svc.consumers import EventApplier
from rec_svc.holder import IndexHolder
from rec_svc.model.types import TrackMeta
from rec_svc.server import RecRuntime, make_setup
from rec_svc.settings import RecSettings
from rec_svc.store import RecStore

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
class WorldCatalog:
    """What the world's catalog holds, as the tests know it (catalog_svc serves the same)."""

    tracks: dict[uuid.UUID, TrackMeta] = field(default_factory=dict)
    artist_genres: dict[uuid.UUID, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, world: World) -> WorldCatalog:
        known = cls()
        for meta in world.tracks:
            known.tracks[meta.track_id] = meta
            for a in meta.artist_ids:
                known.artist_genres[a] = tuple(dict.fromkeys((*known.artist_genres.get(a, ()), *meta.genres)))
        return known

    def genres(self) -> list[str]:
        return sorted({g for gs in self.artist_genres.values() for g in gs})


@dataclass
class RecEnv:
    world: World
    catalog: WorldCatalog
    catalog_stub: catalog_pb2_grpc.CatalogServiceStub
    catalog_database_url: str
    settings: Settings
    rec: RecSettings
    runtime: RecRuntime
    channel: aio.Channel
    version: str

    @property
    def stub(self) -> rec_pb2_grpc.RecommendationServiceStub:
        return rec_pb2_grpc.RecommendationServiceStub(self.channel)

    def catalog_calls(self, rpc: str) -> float:
        """How many `rpc` calls catalog_svc answered (its request metric: it runs in this process,
        and while a rec test runs no other catalog_svc here is asked anything)."""
        verb, route = http_route(f"/spotify.catalog.v1.CatalogService/{rpc}")
        labels = {"method": verb, "route": route, "status_code": "200"}
        return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0

    async def add_track(self, meta: TrackMeta) -> None:
        """A new track of an existing artist in the catalog (its own album), as ingest leaves it."""
        artist = meta.artist_ids[0]
        name = ids.encode(meta.track_id)[:6]
        album = catalog_seed.SeedAlbum(
            id=uuid.uuid4(),
            artist_id=artist,
            title=f"Late {name}",
            release_date=NOW.date(),
            album_type="single",
            total_tracks=1,
            label="Synthetic",
        )
        track = catalog_seed.SeedTrack(
            id=meta.track_id,
            album_id=album.id,
            artist_id=artist,
            title=f"Track {name}",
            duration_ms=rec_world.TRACK_DURATION_MS,
            track_number=1,
            explicit=False,
            popularity=int(meta.popularity),
            audio_features=dict(meta.features) if meta.features else None,
        )
        wrote = await asyncio.to_thread(
            catalog_seed.load_catalog, self.catalog_database_url, [], [album], [track], only_if_empty=False
        )
        assert wrote
        self.catalog.tracks[meta.track_id] = meta

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
def world_database_url(database_url: str) -> Iterator[str]:
    """A database for the world alone (catalog and rec schemas), dropped at the end of the run."""
    name = f"rec_world_{uuid.uuid4().hex[:10]}"
    server = datatier.with_database(database_url, "postgres")
    datatier.create_database(server, name)
    url = datatier.with_database(database_url, name)
    upgrade("catalog_svc", url)
    upgrade("rec_svc", url)
    yield url
    datatier.drop_database(server, name)


@pytest.fixture(scope="session")
async def rec_env(
    world_database_url: str, redis_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RecEnv]:
    world = generate(WORLD)
    assert await asyncio.to_thread(
        catalog_seed.load_catalog, world_database_url, *rec_world.catalog(world), only_if_empty=False
    )
    async with AsyncExitStack() as stack:
        catalog = await start_server(
            "catalog_svc",
            catalog_setup(CatalogSettings(stream_consumer=False)),
            Settings(
                database_url=world_database_url,
                redis_url=redis_url,
                kafka_bootstrap=kafka_bootstrap,
                listen_addr="127.0.0.1:0",
                metrics_port=-1,
                public_base_url="http://catalog.test",
                storage_root=tmp_path_factory.mktemp("rec-world-objects"),
                user_deletions=False,
            ),
            stack,
        )
        stack.push_async_callback(catalog.stop, 0)
        catalog_addr = f"127.0.0.1:{catalog.internal_port}"
        catalog_channel = aio.insecure_channel(catalog_addr)
        stack.push_async_callback(catalog_channel.close)
        settings = Settings(
            database_url=world_database_url,
            catalog_addr=catalog_addr,
            listen_addr="127.0.0.1:0",
            metrics_port=-1,
            user_deletions=False,
        )
        rec = RecSettings(
            index_dir=Path(tmp_path_factory.mktemp("rec-indexes")),
            consumers=False,
            reload_poll_s=0,
            # One process, so nothing to learn from other replicas; and the consumer tests write
            # made-up tracks (and the session broker's foreign events) into this database, which
            # this world's index must not pick up. The replica sync is tested on its own.
            live_sync_s=0,
            build_threads=1,
        )
        # The history goes in through the consumer's own code path, as streams.counted.v1 would bring it.
        engine = db.create_engine(world_database_url, pool_size=1)
        stack.push_async_callback(engine.dispose)
        applier = EventApplier(RecStore(db.session_factory(engine)), Catalog(None), IndexHolder())  # type: ignore[arg-type]
        events = stream_events(world)
        for i in range(0, len(events), 2000):
            await applier.apply_streams(events[i : i + 2000])
        summary = await batch.build(settings, rec, reload=False, now=NOW)
        ready: list[RecRuntime] = []
        running = await start_server("rec_svc", make_setup(rec, on_ready=ready.append), settings, stack)
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.internal_port}")
        stack.push_async_callback(channel.close)
        yield RecEnv(
            world,
            WorldCatalog.of(world),
            catalog_pb2_grpc.CatalogServiceStub(catalog_channel),
            world_database_url,
            settings,
            rec,
            ready[0],
            channel,
            summary["version"],
        )
