"""rec_svc bootstrap: a channel to catalog and its servicer."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.catalog.v1 import catalog_pb2_grpc
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from meshkit.channels import open_channel
from meshkit.config import Settings
from meshkit.server import run
from rec_svc.servicer import RecommendationServicer

SERVICE = "rec_svc"


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    catalog = open_channel(settings.catalog_addr, timeout_s=settings.rpc_timeout_s)
    stack.push_async_callback(catalog.close)
    servicer = RecommendationServicer(catalog_pb2_grpc.CatalogServiceStub(catalog))
    rec_pb2_grpc.add_RecommendationServiceServicer_to_server(servicer, server)
    return [rec_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name]


def main() -> None:
    run(SERVICE, setup)
