"""library_svc bootstrap: its database, Redis (idempotency), channels to catalog and auth, its servicer."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.library.v1 import library_pb2, library_pb2_grpc

from library_svc.clients import Neighbours
from library_svc.objects import LibraryObjects
from library_svc.servicer import LibraryServicer
from library_svc.settings import LibrarySettings
from library_svc.store import LibraryStore
from meshkit import db
from meshkit.channels import open_channel
from meshkit.config import Settings
from meshkit.idempotency import Idempotency
from meshkit.redis_client import create_redis
from meshkit.server import run
from meshkit.ttlcache import TTLCache

SERVICE = "library_svc"


async def setup(server: aio.Server, shared: Settings, stack: AsyncExitStack) -> Sequence[str]:
    settings = LibrarySettings.of(shared)
    engine = db.create_engine(settings.database_url)
    stack.push_async_callback(engine.dispose)
    redis = create_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    catalog = open_channel(settings.catalog_addr, timeout_s=settings.rpc_timeout_s)
    auth = open_channel(settings.auth_addr, timeout_s=settings.rpc_timeout_s)
    stack.push_async_callback(catalog.close)
    stack.push_async_callback(auth.close)
    servicer = LibraryServicer(
        LibraryStore(db.session_factory(engine)),
        Neighbours(
            catalog,
            auth,
            settings.public_base_url,
            TTLCache(settings.library_track_cache_size, settings.library_track_cache_ttl_s),
        ),
        LibraryObjects(settings.public_base_url),
        Idempotency(redis),
    )
    library_pb2_grpc.add_LibraryServiceServicer_to_server(servicer, server)
    return [library_pb2.DESCRIPTOR.services_by_name["LibraryService"].full_name]


def main() -> None:
    run(SERVICE, setup)
