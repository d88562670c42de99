"""auth_svc bootstrap: its database and servicers."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.objects import UserObjects
from auth_svc.servicer import AuthServicer
from auth_svc.store import AuthStore
from meshkit import db
from meshkit.config import Settings
from meshkit.server import run

SERVICE = "auth_svc"


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    engine = db.create_engine(settings.database_url)
    stack.push_async_callback(engine.dispose)
    servicer = AuthServicer(AuthStore(db.session_factory(engine)), UserObjects(settings.public_base_url))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
    auth_pb2_grpc.add_AdminServiceServicer_to_server(auth_pb2_grpc.AdminServiceServicer(), server)
    services = auth_pb2.DESCRIPTOR.services_by_name
    return [services["AuthService"].full_name, services["AdminService"].full_name]


def main() -> None:
    run(SERVICE, setup)
