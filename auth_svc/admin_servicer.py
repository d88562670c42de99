"""AdminService (`/api/admin/*`): protobuf in, one call to the admin or audit domain, protobuf out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.admin import Admin
from auth_svc.audit import AuditTrail
from auth_svc.credentials import client_ip, metadata_headers
from auth_svc.deletion import Deletions
from auth_svc.objects import UserObjects, audit_event, role_names, user_deletion
from auth_svc.store import AuditFilter
from meshkit import ids, paging
from meshkit.context import current_caller
from meshkit.errors import InvalidArgument


def _timestamp(text: str, field: str) -> datetime | None:
    """An RFC 3339 time (naive means UTC), or None when empty."""
    if not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument(f"{field} must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AdminServicer(auth_pb2_grpc.AdminServiceServicer):
    admin: Admin
    audit: AuditTrail
    objects: UserObjects
    deletions: Deletions

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: aio.ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        caller = self.admin.authorize(current_caller())
        page = paging.request_window(request, default=20, maximum=100)
        accounts, total = await self.admin.list_users(caller, request.query.strip(), page)
        return auth_pb2.ListUsersResponse(
            users=[self.objects.private(a) for a in accounts],
            total=total,
            limit=page.limit,
            offset=page.offset,
            next_page_token=paging.next_page_token(page, total),
        )

    async def BanUser(
        self, request: auth_pb2.BanUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.BanUserResponse:
        caller = self.admin.authorize(current_caller())
        account, revoked = await self.admin.ban(
            caller,
            ids.parse_id_or_uri(request.user_id, "user"),
            request.reason.strip(),
            client_ip(metadata_headers(context)),
        )
        return auth_pb2.BanUserResponse(user=self.objects.private(account), revoked_sessions=revoked)

    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.UserDeletion:
        caller = self.admin.authorize(current_caller())
        deletion = await self.deletions.delete_by_admin(
            caller,
            ids.parse_id_or_uri(request.user_id, "user"),
            request.reason.strip(),
            client_ip(metadata_headers(context)),
        )
        return user_deletion(deletion)

    async def GetUserDeletion(
        self, request: auth_pb2.GetUserDeletionRequest, context: aio.ServicerContext
    ) -> auth_pb2.UserDeletion:
        caller = self.admin.authorize(current_caller())
        return user_deletion(
            await self.deletions.status(caller, ids.parse_id_or_uri(request.user_id, "user"))
        )

    async def UnbanUser(
        self, request: auth_pb2.UnbanUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.UnbanUserResponse:
        caller = self.admin.authorize(current_caller())
        account = await self.admin.unban(
            caller,
            ids.parse_id_or_uri(request.user_id, "user"),
            client_ip(metadata_headers(context)),
        )
        return auth_pb2.UnbanUserResponse(user=self.objects.private(account))

    async def SetUserRoles(
        self, request: auth_pb2.SetUserRolesRequest, context: aio.ServicerContext
    ) -> auth_pb2.SetUserRolesResponse:
        caller = self.admin.authorize(current_caller())
        account = await self.admin.set_roles(
            caller,
            ids.parse_id_or_uri(request.user_id, "user"),
            role_names(request.roles),
            [ids.parse_id_or_uri(a, "artist") for a in request.artist_ids],
            client_ip(metadata_headers(context)),
        )
        return auth_pb2.SetUserRolesResponse(user=self.objects.private(account))

    async def ListAuditLogs(
        self, request: auth_pb2.ListAuditLogsRequest, context: aio.ServicerContext
    ) -> auth_pb2.ListAuditLogsResponse:
        caller = self.admin.authorize(current_caller())
        page = paging.request_window(request, default=50, maximum=200)
        actor_id = request.actor_id.strip()
        where = AuditFilter(
            action=request.action.strip(),
            actor_id=ids.parse_id_or_uri(actor_id, "user") if actor_id else None,
            resource_type=request.resource_type.strip(),
            since=_timestamp(request.since, "since"),
            until=_timestamp(request.until, "until"),
        )
        events, total = await self.audit.events(caller, where, page)
        return auth_pb2.ListAuditLogsResponse(
            events=[audit_event(row) for row in events],
            total=total,
            limit=page.limit,
            offset=page.offset,
            next_page_token=paging.next_page_token(page, total),
        )
