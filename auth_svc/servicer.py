"""AuthService: protobuf in, one domain call, protobuf out (status codes come from DomainErrors)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC

from google.api import httpbody_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.common.v1 import common_pb2

from auth_svc.accounts import Accounts
from auth_svc.audit import AuditTrail
from auth_svc.credentials import SessionCookie, client_ip, metadata_headers, token_from_headers
from auth_svc.deletion import Deletions
from auth_svc.exports import Exports
from auth_svc.objects import UserObjects, audit_event, data_export, role_values, user_deletion
from auth_svc.sessions import Sessions
from auth_svc.store import AuditEntry
from meshkit import ids
from meshkit.context import current_caller, current_idempotency_key, current_request_id
from meshkit.errors import InvalidArgument


@dataclass(frozen=True)
class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    accounts: Accounts
    sessions: Sessions
    audit: AuditTrail
    objects: UserObjects
    cookie: SessionCookie
    deletions: Deletions
    exports: Exports

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: aio.ServicerContext
    ) -> auth_pb2.RegisterResponse:
        account = await self.accounts.register(
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
        result = await self.sessions.login(
            email=request.email, password=request.password, ip=client_ip(metadata_headers(context))
        )
        # Initial metadata: Envoy's transcoder hands it to JSON clients as a response header.
        await context.send_initial_metadata((("set-cookie", self.cookie.issue(result.token)),))
        return auth_pb2.LoginResponse(
            access_token=result.token,
            token_type="Bearer",
            expires_in=self.cookie.max_age_s,
            user=self.objects.private(result.account),
        )

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        user_id = current_caller().require_user()
        headers = metadata_headers(context)
        await self.sessions.logout(user_id, token_from_headers(headers), client_ip(headers))
        await context.send_initial_metadata((("set-cookie", self.cookie.clear()),))
        return auth_pb2.LogoutResponse()

    async def LogoutEverywhere(
        self, request: auth_pb2.LogoutEverywhereRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutEverywhereResponse:
        user_id = current_caller().require_user()
        revoked = await self.sessions.logout_everywhere(user_id, client_ip(metadata_headers(context)))
        await context.send_initial_metadata((("set-cookie", self.cookie.clear()),))
        return auth_pb2.LogoutEverywhereResponse(revoked_sessions=revoked)

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: aio.ServicerContext
    ) -> common_pb2.PublicUser:
        account = await self.accounts.profile(ids.parse_id_or_uri(request.user_id, "user"))
        return self.objects.public(account)

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: aio.ServicerContext) -> auth_pb2.User:
        account = await self.accounts.me(current_caller().require_user())
        return self.objects.private(account)

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: aio.ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        user_id = current_caller().require_user()
        headers = metadata_headers(context)
        revoked = await self.accounts.change_password(
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
        account = await self.accounts.change_email(
            user_id, request.new_email, request.password, client_ip(metadata_headers(context))
        )
        return auth_pb2.ChangeEmailResponse(user=self.objects.private(account))

    async def UpdateSubscription(
        self, request: auth_pb2.UpdateSubscriptionRequest, context: aio.ServicerContext
    ) -> auth_pb2.UpdateSubscriptionResponse:
        user_id = current_caller().require_user()
        account = await self.accounts.update_subscription(
            user_id, request.product, client_ip(metadata_headers(context))
        )
        return auth_pb2.UpdateSubscriptionResponse(user=self.objects.private(account))

    async def DeleteAccount(
        self, request: auth_pb2.DeleteAccountRequest, context: aio.ServicerContext
    ) -> auth_pb2.UserDeletion:
        user_id = current_caller().require_user()
        deletion = await self.deletions.delete_own(user_id, request.password)
        await context.send_initial_metadata((("set-cookie", self.cookie.clear()),))
        return user_deletion(deletion)

    async def CreateDataExport(
        self, request: auth_pb2.CreateDataExportRequest, context: aio.ServicerContext
    ) -> auth_pb2.DataExport:
        user_id = current_caller().require_user()
        row = await self.exports.request(
            user_id, current_idempotency_key(request.request_id), client_ip(metadata_headers(context))
        )
        return data_export(row, None)

    async def GetDataExport(
        self, request: auth_pb2.GetDataExportRequest, context: aio.ServicerContext
    ) -> auth_pb2.DataExport:
        user_id = current_caller().require_user()
        row, download = await self.exports.get(user_id, ids.decode(request.id, what="id"))
        return data_export(row, download)

    async def DownloadDataExport(
        self, request: auth_pb2.DownloadDataExportRequest, context: aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        row, archive = await self.exports.download(
            ids.decode(request.id, what="id"),
            request.exp,
            request.uid,
            request.kid,
            request.sig,
            client_ip(metadata_headers(context)),
        )
        filename = f"spotify-data-{ids.encode(row.id)}.zip"
        await context.send_initial_metadata((("content-disposition", f'attachment; filename="{filename}"'),))
        return httpbody_pb2.HttpBody(content_type="application/zip", data=archive)

    async def ConfirmUserDeletion(
        self, request: auth_pb2.ConfirmUserDeletionRequest, context: aio.ServicerContext
    ) -> auth_pb2.ConfirmUserDeletionResponse:
        await self.deletions.confirm(ids.decode(request.user_id, what="user_id"), request.service)
        return auth_pb2.ConfirmUserDeletionResponse()

    async def ValidateSession(
        self, request: auth_pb2.ValidateSessionRequest, context: aio.ServicerContext
    ) -> auth_pb2.ValidateSessionResponse:
        """Internal (Envoy answers 404 for it from outside): who a token belongs to."""
        found = await self.sessions.validate(request.token, touch=request.touch)
        expires_at = Timestamp()
        expires_at.FromSeconds(found.expires_at)
        return auth_pb2.ValidateSessionResponse(
            user_id=ids.encode(found.session.user_id),
            roles=role_values(found.session.roles),
            product=found.session.product,
            banned=found.account.user.banned,
            country=found.account.user.country or "",
            expires_at=expires_at,
            artist_ids=[ids.encode(a) for a in found.account.artist_ids],
        )

    async def RecordAuditEvent(
        self, request: auth_pb2.RecordAuditEventRequest, context: aio.ServicerContext
    ) -> auth_pb2.RecordAuditEventResponse:
        """Internal: other services append to the audit log through this, never by SQL."""
        event = request.event
        entry = AuditEntry(
            action=event.action.strip(),
            success=event.success,
            actor_id=_optional_id(event.actor_id, "event.actor_id"),
            actor_ip=event.actor_ip.strip(),
            resource_type=event.resource_type.strip(),
            resource_id=event.resource_id.strip(),
            details=MessageToDict(event.details) if event.HasField("details") else {},
            request_id=event.request_id or current_request_id(),
            occurred_at=event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else None,
        )
        return auth_pb2.RecordAuditEventResponse(event=audit_event(await self.audit.record(entry)))


def _optional_id(text: str, field: str) -> uuid.UUID | None:
    if not text.strip():
        return None
    try:
        return ids.parse_id_or_uri(text.strip(), "user")
    except InvalidArgument as exc:
        raise InvalidArgument(f"{field}: {exc.message}") from None
