"""auth_svc bootstrap: its database, Redis, and the four gRPC services it serves.

AuthService and AdminService are public (routed by Envoy); Authorization (ext_authz) and
RateLimitService are called by Envoy itself and never routed to from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from envoyapi.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoyapi.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc import limits
from auth_svc.admin import AdminServicer
from auth_svc.authz import AuthorizationServicer
from auth_svc.identity import Identity
from auth_svc.objects import UserObjects
from auth_svc.passwords import PasswordHasher
from auth_svc.ratelimit import RateLimitServicer, SlidingWindow
from auth_svc.servicer import AuthServicer
from auth_svc.sessions import SessionStore
from auth_svc.store import AuthStore
from meshkit import db
from meshkit.config import Settings
from meshkit.redis_client import create_redis
from meshkit.server import run

SERVICE = "auth_svc"


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    engine = db.create_engine(settings.database_url)
    stack.push_async_callback(engine.dispose)
    redis = create_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)

    store = AuthStore(db.session_factory(engine))
    sessions = SessionStore(redis, settings.session_ttl_s)
    identity = Identity(store, sessions, PasswordHasher(settings.bcrypt_rounds))
    objects = UserObjects(settings.public_base_url)
    table = limits.load(settings.ratelimit_config)

    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(
            store,
            objects,
            identity,
            session_ttl_s=settings.session_ttl_s,
            cookie_secure=settings.session_cookie_secure,
        ),
        server,
    )
    auth_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(store, objects, identity), server)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(AuthorizationServicer(sessions), server)
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(
        RateLimitServicer(
            table,
            SlidingWindow(redis, settings.ratelimit_key_prefix),
            fail_open=settings.ratelimit_fail_open,
        ),
        server,
    )
    services = auth_pb2.DESCRIPTOR.services_by_name
    return [
        services["AuthService"].full_name,
        services["AdminService"].full_name,
        external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name,
        rls_pb2.DESCRIPTOR.services_by_name["RateLimitService"].full_name,
    ]


def main() -> None:
    run(SERVICE, setup)
