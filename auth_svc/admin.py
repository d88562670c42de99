"""AdminService (`/api/admin/*`): users, bans, roles and the audit log, for role admin only.

Envoy has already authenticated the caller; the role is checked here, on every RPC, because the
service is the one place that cannot be routed around.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.credentials import client_ip, metadata_headers
from auth_svc.identity import Identity
from auth_svc.objects import ROLE_NAME, UserObjects, audit_event
from auth_svc.store import AuditFilter, AuthStore
from meshkit import ids
from meshkit.context import current_caller
from meshkit.errors import InvalidArgument

ADMIN = "admin"


def _page(
    limit: int, offset: int, page_size: int, page_token: str, *, default: int, maximum: int
) -> tuple[int, int]:
    """(offset, size) from Spotify-style limit/offset or AIP page_size/page_token."""
    size = limit or page_size or default
    if not 1 <= size <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}")
    if page_token:
        offset = _decode_token(page_token)
    if offset < 0:
        raise InvalidArgument("offset must not be negative")
    return offset, size


def _next_token(offset: int, size: int, total: int) -> str:
    if offset + size >= total:
        return ""
    return base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "o" or not value.isdigit():
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("page_token is not valid") from None


def _timestamp(text: str, field: str) -> datetime | None:
    """An RFC 3339 time (naive means UTC), or None when empty."""
    if not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument(f"{field} must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AdminServicer(auth_pb2_grpc.AdminServiceServicer):
    def __init__(self, store: AuthStore, objects: UserObjects, identity: Identity) -> None:
        self.store = store
        self.objects = objects
        self.identity = identity

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: aio.ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        current_caller().require_role(ADMIN)
        offset, size = _page(
            request.limit, request.offset, request.page_size, request.page_token, default=20, maximum=100
        )
        accounts, total = await self.store.list_users(request.query.strip(), offset, size)
        return auth_pb2.ListUsersResponse(
            users=[self.objects.private(a) for a in accounts],
            total=total,
            limit=size,
            offset=offset,
            next_page_token=_next_token(offset, size, total),
        )

    async def BanUser(
        self, request: auth_pb2.BanUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.BanUserResponse:
        admin_id = current_caller().require_role(ADMIN)
        user_id = ids.parse_id_or_uri(request.user_id, "user")
        account, revoked = await self.identity.ban(
            admin_id, user_id, request.reason.strip(), client_ip(metadata_headers(context))
        )
        return auth_pb2.BanUserResponse(user=self.objects.private(account), revoked_sessions=revoked)

    async def UnbanUser(
        self, request: auth_pb2.UnbanUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.UnbanUserResponse:
        admin_id = current_caller().require_role(ADMIN)
        user_id = ids.parse_id_or_uri(request.user_id, "user")
        account = await self.identity.unban(admin_id, user_id, client_ip(metadata_headers(context)))
        return auth_pb2.UnbanUserResponse(user=self.objects.private(account))

    async def SetUserRoles(
        self, request: auth_pb2.SetUserRolesRequest, context: aio.ServicerContext
    ) -> auth_pb2.SetUserRolesResponse:
        admin_id = current_caller().require_role(ADMIN)
        user_id = ids.parse_id_or_uri(request.user_id, "user")
        unknown = [r for r in request.roles if r not in ROLE_NAME]
        if unknown:
            raise InvalidArgument(f"roles: unknown role value(s) {unknown}")
        artist_ids = [ids.parse_id_or_uri(a, "artist") for a in request.artist_ids]
        account = await self.identity.set_roles(
            admin_id,
            user_id,
            [ROLE_NAME[r] for r in request.roles],
            artist_ids,
            client_ip(metadata_headers(context)),
        )
        return auth_pb2.SetUserRolesResponse(user=self.objects.private(account))

    async def ListAuditLogs(
        self, request: auth_pb2.ListAuditLogsRequest, context: aio.ServicerContext
    ) -> auth_pb2.ListAuditLogsResponse:
        current_caller().require_role(ADMIN)
        offset, size = _page(
            request.limit, request.offset, request.page_size, request.page_token, default=50, maximum=200
        )
        where = AuditFilter(
            action=request.action.strip(),
            actor_id=ids.parse_id_or_uri(request.actor_id.strip(), "user")
            if request.actor_id.strip()
            else None,
            resource_type=request.resource_type.strip(),
            since=_timestamp(request.since, "since"),
            until=_timestamp(request.until, "until"),
        )
        rows, total = await self.store.list_audit(where, offset, size)
        return auth_pb2.ListAuditLogsResponse(
            events=[audit_event(row) for row in rows],
            total=total,
            limit=size,
            offset=offset,
            next_page_token=_next_token(offset, size, total),
        )
