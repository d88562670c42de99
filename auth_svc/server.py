"""auth_svc bootstrap: its database, Redis, and the three gRPC services it serves.

AuthService and AdminService are public (routed by Envoy); Authorization (ext_authz, which also
applies the rate limits) is called by Envoy itself and never routed to from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from envoyapi.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc import limits
from auth_svc.accounts import Accounts
from auth_svc.admin import Admin
from auth_svc.admin_servicer import AdminServicer
from auth_svc.audit import AuditTrail
from auth_svc.authz_servicer import AuthorizationServicer
from auth_svc.credentials import SessionCookie
from auth_svc.objects import UserObjects
from auth_svc.passwords import PasswordHasher
from auth_svc.ratelimit import RateLimiter
from auth_svc.ratelimit_store import SlidingWindow
from auth_svc.servicer import AuthServicer
from auth_svc.session_store import SessionStore
from auth_svc.sessions import Sessions
from auth_svc.settings import AuthSettings, get_auth_settings
from auth_svc.store import AuthStore
from meshkit import db
from meshkit.config import Settings
from meshkit.resources import Resources
from meshkit.server import Setup, run

SERVICE = "auth_svc"


def make_setup(auth_settings: AuthSettings | None = None) -> Setup:
    """The server setup, with auth's own settings injectable (tests may pick their own)."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        auth = auth_settings or get_auth_settings()
        opened = Resources(settings, stack)
        engine, redis = opened.database(), opened.redis()

        store = AuthStore(db.session_factory(engine))
        session_store = SessionStore(redis, auth.session_ttl_s)
        hasher = PasswordHasher(auth.bcrypt_rounds)
        sessions = Sessions(store, session_store, hasher)
        audit = AuditTrail(store)
        objects = UserObjects(settings.public_base_url)
        limiter = RateLimiter(
            limits.load(auth.ratelimit_config),
            SlidingWindow(redis, auth.ratelimit_key_prefix),
            fail_open=auth.ratelimit_fail_open,
            timeout_s=auth.ratelimit_timeout_s,
        )

        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(
                Accounts(store, session_store, hasher),
                sessions,
                audit,
                objects,
                SessionCookie(max_age_s=auth.session_ttl_s, secure=auth.session_cookie_secure),
            ),
            server,
        )
        auth_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(Admin(store, session_store), audit, objects), server
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
            AuthorizationServicer(sessions, limiter, settings.public_base_url), server
        )
        services = auth_pb2.DESCRIPTOR.services_by_name
        return [
            services["AuthService"].full_name,
            services["AdminService"].full_name,
            external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name,
        ]

    return setup


setup = make_setup()


def main() -> None:
    run(SERVICE, setup)
