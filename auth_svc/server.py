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
from auth_svc.clients import ServiceParts
from auth_svc.credentials import SessionCookie
from auth_svc.deletion import Deletions
from auth_svc.export_store import ExportStore
from auth_svc.exports import Exports
from auth_svc.models import OutboxEvent
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
from meshkit.kafka import Producer
from meshkit.outbox import DeletingOutboxStore, OutboxRelay
from meshkit.resources import Resources
from meshkit.secrets import media_signing
from meshkit.server import Setup, run

SERVICE = "auth_svc"


def make_setup(auth_settings: AuthSettings | None = None) -> Setup:
    """The server setup, with auth's own settings injectable (tests may pick their own)."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        auth = auth_settings or get_auth_settings()
        opened = Resources(settings, stack)
        engine, redis = opened.database(), opened.redis()

        sessions_factory = db.session_factory(engine)
        store = AuthStore(sessions_factory)
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

        relay = OutboxRelay(
            DeletingOutboxStore(sessions_factory, OutboxEvent),
            lambda: Producer(settings.kafka_bootstrap, client_id=SERVICE),
            name="auth-outbox-relay",
        )
        relay.start()
        stack.push_async_callback(relay.stop)
        deletions = Deletions(store, session_store, hasher, relay.kick)
        parts = ServiceParts(
            {
                "catalog_svc": opened.channel(settings.catalog_addr),
                "library_svc": opened.channel(settings.library_addr),
                "playback_svc": opened.channel(settings.playback_addr),
                "rec_svc": opened.channel(settings.rec_addr),
            }
        )
        exports = Exports(ExportStore(sessions_factory), session_store, parts, settings.public_base_url)
        exports.start()
        stack.push_async_callback(exports.stop)

        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(
                Accounts(store, session_store, hasher),
                sessions,
                audit,
                objects,
                SessionCookie(max_age_s=auth.session_ttl_s, secure=auth.session_cookie_secure),
                deletions,
                exports,
            ),
            server,
        )
        auth_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(Admin(store, session_store), audit, objects, deletions), server
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
    # Data exports are downloaded through URLs signed with the mesh's URL-signing keys.
    run(SERVICE, setup, secrets=lambda settings: [media_signing(settings)])
