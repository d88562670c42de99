"""catalog_svc bootstrap: its database, its servicer, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc.objects import ObjectBuilder
from catalog_svc.servicer import CatalogServicer
from catalog_svc.store import CatalogStore
from meshkit import db
from meshkit.config import Settings
from meshkit.server import run

SERVICE = "catalog_svc"


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    engine = db.create_engine(settings.database_url)
    stack.push_async_callback(engine.dispose)
    servicer = CatalogServicer(
        CatalogStore(db.session_factory(engine)), ObjectBuilder(settings.public_base_url)
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)
    return [catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]


def main() -> None:
    run(SERVICE, setup)
