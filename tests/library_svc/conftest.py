"""Fixtures for library_svc: the service in-process on the test database and Redis, its neighbours
(catalog_svc, auth_svc) from the running mesh, and test users and tracks written by the owning
services' seed entry points (`auth_svc.seed`, `catalog_svc.seed`), as the demo data is.

The in-process server and the mesh's own library_svc share the database, so a playlist created
here over gRPC can be read through Envoy as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date

import pytest
from grpc import aio
from spotify.library.v1 import library_pb2, library_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from auth_svc.seed import SeedAccount, load_accounts
from catalog_svc import seed as catalog_seed
from catalog_svc.seed import SeedAlbum, SeedArtist, SeedTrack
from devdata import demo
from library_svc.server import setup
from meshctl.mesh import Mesh
from meshkit import ids
from meshkit.config import Settings
from meshkit.server import start_server

TEST_TRACKS = 1_000  # 20 collaborators x 50 tracks, all distinct


@dataclass(frozen=True)
class User:
    """A user that auth_svc knows, and the metadata Envoy would inject for them after auth."""

    id: uuid.UUID

    @property
    def key(self) -> str:
        return ids.encode(self.id)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-user-id", self.key), ("x-user-roles", "user"))


@pytest.fixture(scope="session")
def sync_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def track_ids(running_mesh: Mesh) -> list[uuid.UUID]:
    """1,000 tracks of one test artist, through catalog_svc's seed entry point (the demo has 600).

    The artist has no genres, so the catalog's genre seeds (asserted elsewhere) do not change.
    """
    artist_id, album_id = uuid.uuid4(), uuid.uuid4()
    tracks = [uuid.uuid4() for _ in range(TEST_TRACKS)]
    wrote = catalog_seed.load_catalog(
        running_mesh.database_url,
        [SeedArtist(artist_id, "Library Fixture Ensemble", (), False, 0, 0, "")],
        [SeedAlbum(album_id, artist_id, "Fixture Tracks", date(2024, 1, 1), "album", len(tracks), "")],
        [
            SeedTrack(t, album_id, artist_id, f"Fixture {i:04d}", 120_000, i + 1, False, 0)
            for i, t in enumerate(tracks)
        ],
        only_if_empty=False,
    )
    assert wrote
    return tracks


@pytest.fixture(scope="session")
def artist_ids(running_mesh: Mesh) -> list[uuid.UUID]:
    """Five demo artists, for follow tests."""
    artists, _albums, _tracks = demo.catalog()
    return [a.id for a in sorted(artists, key=lambda a: a.name)[:5]]


@pytest.fixture(scope="session")
def album_ids(running_mesh: Mesh) -> list[uuid.UUID]:
    """Three demo albums, for saved-album tests."""
    _artists, albums, _tracks = demo.catalog()
    return [b.id for b in sorted(albums, key=lambda b: b.title)[:3]]


def make_users_in(database_url: str) -> Callable[[int], list[User]]:
    """A factory of accounts in auth_svc, through its seed entry point (auth_svc's GetUser must
    know collaborators)."""

    def make(count: int) -> list[User]:
        users = [User(uuid.uuid4()) for _ in range(count)]
        accounts = [
            SeedAccount(
                id=u.id,
                email=f"library-{u.id.hex}@example.test",
                password=uuid.uuid4().hex,
                display_name=f"Library Tester {u.key[:6]}",
                roles=("user",),
            )
            for u in users
        ]
        # load_accounts runs an event loop of its own (its password hasher's): not on the test's.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(load_accounts, database_url, accounts, bcrypt_rounds=4).result() == count
        return users

    return make


@pytest.fixture(scope="session")
def library_settings(running_mesh: Mesh, database_url: str, redis_url: str) -> Settings:
    ports = running_mesh.layout.internal_ports
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        catalog_addr=f"127.0.0.1:{ports['catalog_svc']}",
        auth_addr=f"127.0.0.1:{ports['auth_svc']}",
        listen_addr="127.0.0.1:0",
        public_base_url=running_mesh.envoy_url,
        user_deletions=False,  # the mesh's library_svc takes part in deletions, not this one
    )


@pytest.fixture(scope="session")
async def library_channel(library_settings: Settings) -> AsyncIterator[aio.Channel]:
    """library_svc started in this process (meshkit.server.start_server + library_svc.server.setup)."""
    async with AsyncExitStack() as stack:
        running = await start_server("library_svc", setup, library_settings, stack)
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.internal_port}")
        stack.push_async_callback(channel.close)
        yield channel


@pytest.fixture(scope="session")
def library(library_channel: aio.Channel) -> library_pb2_grpc.LibraryServiceStub:
    return library_pb2_grpc.LibraryServiceStub(library_channel)


class LibraryHarness:
    """What the tests do over and over: make users and playlists, read items and the stored rows."""

    def __init__(
        self,
        stub: library_pb2_grpc.LibraryServiceStub,
        engine: Engine,
        database_url: str,
        tracks: list[uuid.UUID],
    ):
        self.stub = stub
        self.engine = engine
        self.tracks = tracks
        self._users = make_users_in(database_url)

    def user(self, user_id: uuid.UUID) -> User:
        """An existing user (e.g. a demo account) to call as."""
        return User(user_id)

    def users(self, count: int, *, with_profile: bool = True) -> list[User]:
        """Fresh users; with a profile in auth's schema unless told otherwise (faster)."""
        if not with_profile:
            return [User(uuid.uuid4()) for _ in range(count)]
        return self._users(count)

    async def create(
        self,
        owner: User,
        *,
        name: str = "Test playlist",
        public: bool | None = None,
        collaborative: bool = False,
    ) -> library_pb2.Playlist:
        request = library_pb2.CreatePlaylistRequest(name=name, collaborative=collaborative)
        if public is not None:
            request.public = public
        return await self.stub.CreatePlaylist(request, metadata=owner.metadata, timeout=10)

    async def add(
        self, user: User, playlist_id: str, tracks: list[uuid.UUID], **fields: object
    ) -> library_pb2.AddPlaylistItemsResponse:
        request = library_pb2.AddPlaylistItemsRequest(id=playlist_id, uris=uris(tracks), **fields)
        return await self.stub.AddPlaylistItems(request, metadata=user.metadata, timeout=30)

    async def item_ids(self, playlist_id: str, user: User) -> list[str]:
        """Every item's track id in playlist order, through ListPlaylistItems, 100 per page."""
        found: list[str] = []
        token = ""
        while True:
            page = await self.stub.ListPlaylistItems(
                library_pb2.ListPlaylistItemsRequest(id=playlist_id, limit=100, page_token=token),
                metadata=user.metadata,
                timeout=10,
            )
            found.extend(item.item.id for item in page.items)
            token = page.next_page_token
            if not token:
                return found

    def rows(self, playlist_id: str) -> list[tuple[int, str, str]]:
        """(position, track id, added_by id) straight from the table, in position order."""
        with self.engine.connect() as conn:
            result = conn.execute(
                text(
                    "SELECT position, track_id, added_by FROM library.playlist_items "
                    "WHERE playlist_id = :p ORDER BY position"
                ),
                {"p": ids.decode(playlist_id)},
            )
            return [(pos, ids.encode(t), ids.encode(a) if a else "") for pos, t, a in result]

    def playlist_row(self, playlist_id: str) -> dict[str, int]:
        """The stored counters and version of a playlist."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT item_count, follower_count, snapshot_version, "
                    "(SELECT count(*) FROM library.playlist_followers f WHERE f.playlist_id = p.id) "
                    "FROM library.playlists p WHERE id = :p"
                ),
                {"p": ids.decode(playlist_id)},
            ).one()
            return {"item_count": row[0], "follower_count": row[1], "version": row[2], "followers": row[3]}


@pytest.fixture(scope="session")
def lib(
    library: library_pb2_grpc.LibraryServiceStub,
    sync_engine: Engine,
    database_url: str,
    track_ids: list[uuid.UUID],
) -> LibraryHarness:
    return LibraryHarness(library, sync_engine, database_url, track_ids)


def uris(track_ids: list[uuid.UUID]) -> list[str]:
    return [ids.uri("track", t) for t in track_ids]
