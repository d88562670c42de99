"""library_svc bootstrap: its database, Redis (idempotency), channels to catalog and auth, its servicer."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc

from library_svc.clients import Auth, Catalog
from library_svc.objects import LibraryObjects
from library_svc.playlists import Playlists
from library_svc.saved import SavedItems
from library_svc.servicer import LibraryServicer
from library_svc.settings import LibrarySettings, get_library_settings
from library_svc.store import LibraryStore
from meshkit import db, evictions
from meshkit.catalog_client import CatalogClient
from meshkit.config import Settings
from meshkit.idempotency import Idempotency
from meshkit.resources import Resources
from meshkit.server import Setup, run
from meshkit.ttlcache import TTLCache

SERVICE = "library_svc"


def make_setup(library_settings: LibrarySettings | None = None) -> Setup:
    """The server setup, with library's own settings injectable (tests may turn the track cache off)."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        library = library_settings or get_library_settings()
        opened = Resources(settings, stack)
        engine, redis = opened.database(), opened.redis()
        catalog_channel, auth_channel = (
            opened.channel(settings.catalog_addr),
            opened.channel(settings.auth_addr),
        )
        track_cache: TTLCache[str, catalog_pb2.Track] = TTLCache(
            library.track_cache_size, library.track_cache_ttl_s, name="catalog_tracks"
        )
        # Tracks taken down come too: playlists and saved tracks list them as unplayable.
        catalog_client = CatalogClient(catalog_channel, track_cache=track_cache, include_unavailable=True)
        evictions.follow(redis, catalog_client, stack)  # a takedown shows at once
        catalog = Catalog(catalog_client)
        auth = Auth(auth_channel, settings.public_base_url)
        store = LibraryStore(db.session_factory(engine))
        idempotency = Idempotency(redis)
        servicer = LibraryServicer(
            Playlists(store, catalog, auth, idempotency),
            SavedItems(store, catalog, idempotency),
            LibraryObjects(settings.public_base_url),
            store.export_user,
        )
        library_pb2_grpc.add_LibraryServiceServicer_to_server(servicer, server)
        opened.user_deletions(SERVICE, lambda user: store.erase_user(user.user_id), auth_channel)
        return [library_pb2.DESCRIPTOR.services_by_name["LibraryService"].full_name]

    return setup


setup = make_setup()


def main() -> None:
    run(SERVICE, setup)
