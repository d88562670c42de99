"""Fixtures for library_svc: the service in-process on the test database and Redis, its neighbours
(catalog_svc, auth_svc) from the running mesh, and test users and tracks written through the owning
services' models (as meshctl.demo does).

The in-process server and the mesh's own library_svc share the database, so a playlist created
here over gRPC can be read through Envoy as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from grpc import aio
from spotify.library.v1 import library_pb2, library_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auth_svc import models as auth
from catalog_svc import models as catalog
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
def track_ids(sync_engine: Engine, running_mesh: Mesh) -> list[uuid.UUID]:
    """1,000 tracks of one test artist, written into the catalog schema (the demo has 160).

    The artist has no genres, so the catalog's genre seeds (asserted elsewhere) do not change.
    """
    artist_id, album_id = uuid.uuid4(), uuid.uuid4()
    tracks = [uuid.uuid4() for _ in range(TEST_TRACKS)]
    with Session(sync_engine) as session, session.begin():
        session.add(catalog.Artist(id=artist_id, name="Library Fixture Ensemble", genres=[]))
        session.flush()
        session.add(
            catalog.Album(id=album_id, artist_id=artist_id, title="Fixture Tracks", total_tracks=len(tracks))
        )
        session.flush()
        session.add_all(
            catalog.Track(
                id=t, album_id=album_id, title=f"Fixture {i:04d}", duration_ms=120_000, track_number=i + 1
            )
            for i, t in enumerate(tracks)
        )
        session.flush()
        session.add_all(catalog.TrackArtist(track_id=t, artist_id=artist_id, position=0) for t in tracks)
    return tracks


@pytest.fixture(scope="session")
def artist_ids(sync_engine: Engine, track_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Artists of the catalog (demo ones), for follow tests."""
    with sync_engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM catalog.artists ORDER BY name LIMIT 5"))]


@pytest.fixture(scope="session")
def album_ids(sync_engine: Engine, track_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    with sync_engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM catalog.albums ORDER BY title LIMIT 3"))]


def make_users_in(engine: Engine) -> Callable[[int], list[User]]:
    """A factory of users in auth's schema (auth_svc's GetUser must know collaborators)."""

    def make(count: int) -> list[User]:
        users = [User(uuid.uuid4()) for _ in range(count)]
        with Session(engine) as session, session.begin():
            session.add_all(
                auth.User(
                    id=u.id,
                    email=f"library-{u.id.hex}@example.test",
                    password_hash="!not-a-login-account",
                    display_name=f"Library Tester {u.key[:6]}",
                )
                for u in users
            )
        return users

    return make


@pytest.fixture(scope="session")
def library_settings(running_mesh: Mesh, database_url: str, redis_url: str) -> Settings:
    ports = running_mesh.layout.ports
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        catalog_addr=f"127.0.0.1:{ports['catalog_svc']}",
        auth_addr=f"127.0.0.1:{ports['auth_svc']}",
        listen_addr="127.0.0.1:0",
        public_base_url=running_mesh.envoy_url,
    )


@pytest.fixture(scope="session")
async def library_channel(library_settings: Settings) -> AsyncIterator[aio.Channel]:
    """library_svc started in this process (meshkit.server.start_server + library_svc.server.setup)."""
    async with AsyncExitStack() as stack:
        running = await start_server("library_svc", setup, library_settings, stack)
        stack.push_async_callback(running.stop, 0)
        channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
        stack.push_async_callback(channel.close)
        yield channel


@pytest.fixture(scope="session")
def library(library_channel: aio.Channel) -> library_pb2_grpc.LibraryServiceStub:
    return library_pb2_grpc.LibraryServiceStub(library_channel)


class LibraryHarness:
    """What the tests do over and over: make users and playlists, read items and the stored rows."""

    def __init__(self, stub: library_pb2_grpc.LibraryServiceStub, engine: Engine, tracks: list[uuid.UUID]):
        self.stub = stub
        self.engine = engine
        self.tracks = tracks
        self._users = make_users_in(engine)

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
    library: library_pb2_grpc.LibraryServiceStub, sync_engine: Engine, track_ids: list[uuid.UUID]
) -> LibraryHarness:
    return LibraryHarness(library, sync_engine, track_ids)


def uris(track_ids: list[uuid.UUID]) -> list[str]:
    return [ids.uri("track", t) for t in track_ids]
