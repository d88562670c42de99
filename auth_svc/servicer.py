"""AuthService: protobuf in, Identity calls, protobuf out (status codes come from DomainErrors)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC

from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.common.v1 import common_pb2

from auth_svc.audit import AuditEntry, check_entry
from auth_svc.credentials import client_ip, metadata_headers, session_cookie, token_from_headers
from auth_svc.identity import Identity
from auth_svc.objects import ROLE_ENUM, UserObjects, audit_event
from auth_svc.store import AuthStore
from meshkit import ids
from meshkit.context import current_caller, current_request_id
from meshkit.errors import InvalidArgument, NotFound, Unauthenticated


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        store: AuthStore,
        objects: UserObjects,
        identity: Identity,
        *,
        session_ttl_s: int,
        cookie_secure: bool,
    ) -> None:
        self.store = store
        self.objects = objects
        self.identity = identity
        self.session_ttl_s = session_ttl_s
        self.cookie_secure = cookie_secure

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: aio.ServicerContext
    ) -> auth_pb2.RegisterResponse:
        account = await self.identity.register(
            email=request.email,
            password=request.password,
            display_name=request.display_name,
            country=request.country,
            ip=client_ip(metadata_headers(context)),
        )
        return auth_pb2.RegisterResponse(user=self.objects.private(account))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: aio.ServicerContext
    ) -> auth_pb2.LoginResponse:
        result = await self.identity.login(
            email=request.email, password=request.password, ip=client_ip(metadata_headers(context))
        )
        # Initial metadata: Envoy's transcoder hands it to JSON clients as a response header.
        cookie = session_cookie(result.token, self.session_ttl_s, secure=self.cookie_secure)
        await context.send_initial_metadata((("set-cookie", cookie),))
        return auth_pb2.LoginResponse(
            access_token=result.token,
            token_type="Bearer",
            expires_in=self.session_ttl_s,
            user=self.objects.private(result.account),
        )

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        user_id = current_caller().require_user()
        headers = metadata_headers(context)
        await self.identity.logout(user_id, token_from_headers(headers), client_ip(headers))
        await context.send_initial_metadata(
            (("set-cookie", session_cookie("", 0, secure=self.cookie_secure)),)
        )
        return auth_pb2.LogoutResponse()

    async def LogoutEverywhere(
        self, request: auth_pb2.LogoutEverywhereRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutEverywhereResponse:
        user_id = current_caller().require_user()
        revoked = await self.identity.logout_everywhere(user_id, client_ip(metadata_headers(context)))
        await context.send_initial_metadata(
            (("set-cookie", session_cookie("", 0, secure=self.cookie_secure)),)
        )
        return auth_pb2.LogoutEverywhereResponse(revoked_sessions=revoked)

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: aio.ServicerContext
    ) -> common_pb2.PublicUser:
        account = await self.store.account(ids.parse_id_or_uri(request.user_id, "user"))
        if account is None or account.user.banned:
            raise NotFound(f"user {request.user_id} not found")
        return self.objects.public(account)

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: aio.ServicerContext) -> auth_pb2.User:
        account = await self.store.account(current_caller().require_user())
        if account is None:
            raise Unauthenticated("the session's user no longer exists")
        return self.objects.private(account)

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: aio.ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        user_id = current_caller().require_user()
        headers = metadata_headers(context)
        revoked = await self.identity.change_password(
            user_id,
            token_from_headers(headers),
            request.current_password,
            request.new_password,
            client_ip(headers),
        )
        return auth_pb2.ChangePasswordResponse(revoked_sessions=revoked)

    async def ChangeEmail(
        self, request: auth_pb2.ChangeEmailRequest, context: aio.ServicerContext
    ) -> auth_pb2.ChangeEmailResponse:
        user_id = current_caller().require_user()
        account = await self.identity.change_email(
            user_id, request.new_email, request.password, client_ip(metadata_headers(context))
        )
        return auth_pb2.ChangeEmailResponse(user=self.objects.private(account))

    async def UpdateSubscription(
        self, request: auth_pb2.UpdateSubscriptionRequest, context: aio.ServicerContext
    ) -> auth_pb2.UpdateSubscriptionResponse:
        user_id = current_caller().require_user()
        account = await self.identity.update_subscription(
            user_id, request.product, client_ip(metadata_headers(context))
        )
        return auth_pb2.UpdateSubscriptionResponse(user=self.objects.private(account))

    async def ValidateSession(
        self, request: auth_pb2.ValidateSessionRequest, context: aio.ServicerContext
    ) -> auth_pb2.ValidateSessionResponse:
        """Internal (Envoy answers 404 for it from outside): who a token belongs to."""
        session = await self.identity.validate(request.token, touch=request.touch)
        account = await self.store.account(session.user_id) if session else None
        if session is None or account is None:
            raise Unauthenticated("invalid or expired session")
        expires_at = Timestamp()
        expires_at.FromSeconds(int(time.time()) + max(await self.identity.sessions.ttl(request.token), 0))
        return auth_pb2.ValidateSessionResponse(
            user_id=ids.encode(session.user_id),
            roles=sorted(ROLE_ENUM[r] for r in session.roles if r in ROLE_ENUM),
            product=session.product,
            banned=account.user.banned,
            country=account.user.country or "",
            expires_at=expires_at,
            artist_ids=[ids.encode(a) for a in account.artist_ids],
        )

    async def RecordAuditEvent(
        self, request: auth_pb2.RecordAuditEventRequest, context: aio.ServicerContext
    ) -> auth_pb2.RecordAuditEventResponse:
        """Internal: other services append to the audit log through this, never by SQL."""
        event = request.event
        entry = check_entry(
            AuditEntry(
                action=event.action.strip(),
                success=event.success,
                actor_id=_optional_id(event.actor_id, "event.actor_id"),
                actor_ip=event.actor_ip.strip(),
                resource_type=event.resource_type.strip(),
                resource_id=event.resource_id.strip(),
                details=MessageToDict(event.details) if event.HasField("details") else {},
                request_id=event.request_id or current_request_id(),
                occurred_at=(
                    event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else None
                ),
            )
        )
        return auth_pb2.RecordAuditEventResponse(event=audit_event(await self.store.append_audit(entry)))


def _optional_id(text: str, field: str) -> uuid.UUID | None:
    if not text.strip():
        return None
    try:
        return ids.parse_id_or_uri(text.strip(), "user")
    except InvalidArgument as exc:
        raise InvalidArgument(f"{field}: {exc.message}") from None
