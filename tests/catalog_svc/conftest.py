"""Fixtures for catalog_svc tests: the service in-process against the run's real database and broker.

`catalog` is a CatalogService stub to a catalog_svc started in this process (meshkit's
start_server with catalog_svc.server.make_setup) whose permission checks call a real auth_svc, also
in-process. Callers identify themselves with the metadata Envoy would set (`x-user-id`,
`x-user-roles`): `people` holds an admin, two artist managers and a plain user, each with the
metadata to send. The demo catalog is loaded first (if the database is still empty) so that the
end-to-end suite, which shares this database, still finds it: tests here create their own
entities and never change demo rows, and use only demo genres (the e2e suite checks the list).

`scratch_database_url` is a separate, migrated database for tests that change catalog-wide
state (popularity jobs) or need thousands of rows (query plans).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from auth_svc.seed import SeedAccount, load_accounts
from catalog_svc.server import make_setup
from catalog_svc.settings import CatalogSettings
from meshctl import datatier
from meshkit import ids
from meshkit.config import Settings
from meshkit.migrate import upgrade
from meshkit.server import RunningServer, start_server

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Person:
    """A test user: their id and the identity metadata Envoy would attach to their calls."""

    user_id: uuid.UUID
    roles: tuple[str, ...]

    @property
    def metadata(self) -> Metadata:
        return (("x-user-id", ids.encode(self.user_id)), ("x-user-roles", ",".join(self.roles)))


@dataclass(frozen=True)
class People:
    admin: Person
    artist_a: Person  # manages artist_a_id
    artist_b: Person  # manages artist_b_id
    listener: Person  # role user only
    artist_a_id: str
    artist_b_id: str


@pytest.fixture(scope="session")
def catalog_database_url(demo_database_url: str) -> str:
    """The run's database with the demo catalog in it before any test adds rows."""
    return demo_database_url


@pytest.fixture(scope="session")
async def auth_server(catalog_database_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    from auth_svc.server import setup as auth_setup

    settings = Settings(
        database_url=catalog_database_url, redis_url=redis_url, listen_addr="127.0.0.1:0", metrics_port=-1
    )
    async with AsyncExitStack() as stack:
        running = await start_server("auth_svc", auth_setup, settings, stack)
        yield running
        await running.stop(0)


@pytest.fixture(scope="session")
def catalog_storage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the in-process catalog_svc stores ingested audio."""
    return tmp_path_factory.mktemp("catalog-objects")


@pytest.fixture(scope="session")
async def catalog_server(
    catalog_database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    auth_server: RunningServer,
    catalog_storage_root: Path,
) -> AsyncIterator[RunningServer]:
    settings = Settings(
        database_url=catalog_database_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        auth_addr=f"127.0.0.1:{auth_server.internal_port}",
        listen_addr="127.0.0.1:0",
        metrics_port=-1,
        public_base_url="http://catalog.test",
        storage_root=catalog_storage_root,
        user_deletions=False,  # the mesh's catalog_svc takes part in deletions, not this one
    )
    catalog_settings = CatalogSettings(
        stream_group=f"catalog-test-{uuid.uuid4().hex[:8]}", outbox_interval_s=1.0
    )
    async with AsyncExitStack() as stack:
        running = await start_server("catalog_svc", make_setup(catalog_settings), settings, stack)
        yield running
        await running.stop(0)


@pytest.fixture(scope="session")
async def catalog(catalog_server: RunningServer) -> AsyncIterator[catalog_pb2_grpc.CatalogServiceStub]:
    async with aio.insecure_channel(f"127.0.0.1:{catalog_server.internal_port}") as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


async def _grant(database_url: str, person: Person, email: str, artist_ids: list[uuid.UUID]) -> None:
    """Create the account, with the artists it manages, through auth_svc's seed entry point."""
    account = SeedAccount(
        id=person.user_id,
        email=email,
        password=uuid.uuid4().hex,
        display_name=email,
        roles=person.roles,
        managed_artists=tuple(artist_ids),
    )
    # load_accounts runs an event loop of its own (its password hasher's): off this one's thread.
    assert await asyncio.to_thread(load_accounts, database_url, [account], bcrypt_rounds=4) == 1


@pytest.fixture(scope="session")
async def people(catalog: catalog_pb2_grpc.CatalogServiceStub, catalog_database_url: str) -> People:
    """An admin, two artist managers (each of a fresh artist) and a listener."""
    tag = uuid.uuid4().hex[:6]
    admin = Person(ids.new_id(), ("user", "admin"))
    await _grant(catalog_database_url, admin, f"admin-{tag}@test.example", [])
    made = []
    for label in ("A", "B"):
        artist = await catalog.CreateArtist(
            catalog_pb2.CreateArtistRequest(name=f"Permission Artist {label} {tag}", genres=["rock"]),
            metadata=admin.metadata,
        )
        made.append(artist.id)
    artist_a = Person(ids.new_id(), ("user", "artist"))
    artist_b = Person(ids.new_id(), ("user", "artist"))
    listener = Person(ids.new_id(), ("user",))
    await _grant(catalog_database_url, artist_a, f"artist-a-{tag}@test.example", [ids.decode(made[0])])
    await _grant(catalog_database_url, artist_b, f"artist-b-{tag}@test.example", [ids.decode(made[1])])
    await _grant(catalog_database_url, listener, f"listener-{tag}@test.example", [])
    return People(admin, artist_a, artist_b, listener, made[0], made[1])


@pytest.fixture(scope="session")
def scratch_database_url(database_url: str) -> Iterator[str]:
    """A second database with only the catalog schema, dropped at the end of the run."""
    name = f"catalog_scratch_{uuid.uuid4().hex[:10]}"
    server = datatier.with_database(database_url, "postgres")
    datatier.create_database(server, name)
    url = datatier.with_database(database_url, name)
    upgrade("catalog_svc", url)
    yield url
    datatier.drop_database(server, name)
