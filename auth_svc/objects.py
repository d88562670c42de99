"""Builds the Spotify user objects (private and public) and audit events from accounts and rows."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.auth.v1 import auth_pb2
from spotify.common.v1 import common_pb2

from auth_svc.deletion import pending
from auth_svc.export_store import ExportRow
from auth_svc.exports import Download
from auth_svc.models import AuditLog
from auth_svc.store import Account, Deletion
from meshkit import ids, links
from meshkit.errors import InvalidArgument

ROLE_ENUM = {
    "user": auth_pb2.ROLE_USER,
    "premium": auth_pb2.ROLE_PREMIUM,
    "artist": auth_pb2.ROLE_ARTIST,
    "admin": auth_pb2.ROLE_ADMIN,
}
ROLE_NAME = {value: name for name, value in ROLE_ENUM.items()}


def role_values(roles: Iterable[str]) -> list[auth_pb2.Role.ValueType]:
    """The contract's Role values of a role set, sorted (roles it does not know are left out)."""
    return sorted(ROLE_ENUM[r] for r in roles if r in ROLE_ENUM)


def role_names(values: Iterable[int]) -> list[str]:
    """The role names of Role values; INVALID_ARGUMENT for a value the contract does not define."""
    values = list(values)
    unknown = [v for v in values if v not in ROLE_NAME]
    if unknown:
        raise InvalidArgument(f"roles: unknown role value(s) {unknown}")
    return [ROLE_NAME[v] for v in values]


class UserObjects:
    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def public(self, account: Account) -> common_pb2.PublicUser:
        """What anyone may see of a user (Spotify's public user object)."""
        key = ids.encode(account.user.id)
        named = links.of(self.base, "user", key)
        return common_pb2.PublicUser(
            id=key,
            display_name=account.user.display_name or "",
            type="user",
            uri=named.uri,
            href=named.href,
            external_urls=common_pb2.ExternalUrls(spotify=named.open_url),
            followers=common_pb2.Followers(total=0),
        )

    def private(self, account: Account) -> auth_pb2.User:
        """What the user sees of themselves (GET /v1/me), plus roles for internal callers."""
        public = self.public(account)
        created = Timestamp()
        created.FromDatetime(account.user.created_at)
        return auth_pb2.User(
            id=public.id,
            display_name=public.display_name,
            email=account.user.email,
            product=account.product,
            type="user",
            uri=public.uri,
            href=public.href,
            followers=public.followers,
            external_urls=public.external_urls,
            country=account.user.country or "",
            roles=role_values(account.roles),
            banned=account.user.banned,
            ban_reason=account.user.ban_reason or "",
            created_at=created,
            artist_ids=[ids.encode(a) for a in account.artist_ids],
        )


_EXPORT_STATES = {
    "pending": auth_pb2.DataExport.STATE_PENDING,
    "done": auth_pb2.DataExport.STATE_DONE,
    "failed": auth_pb2.DataExport.STATE_FAILED,
}


def data_export(row: ExportRow, download: Download | None) -> auth_pb2.DataExport:
    message = auth_pb2.DataExport(
        id=ids.encode(row.id),
        state=_EXPORT_STATES[row.state],
        size_bytes=row.size_bytes or 0,
        error=row.error or "" if row.state == "failed" else "",
    )
    message.requested_at.FromDatetime(row.requested_at)
    if row.completed_at is not None:
        message.completed_at.FromDatetime(row.completed_at)
    if download is not None:
        message.download_url = download.url
        message.download_expires_at.FromDatetime(download.expires_at)
    return message


def user_deletion(deletion: Deletion) -> auth_pb2.UserDeletion:
    message = auth_pb2.UserDeletion(
        user_id=ids.encode(deletion.user_id),
        requested_by="self" if deletion.requested_by is None else ids.encode(deletion.requested_by),
        pending_services=pending(deletion),
    )
    message.requested_at.FromDatetime(deletion.requested_at)
    for service, at in sorted(deletion.confirmations.items(), key=lambda item: item[1]):
        confirmation = message.confirmations.add(service=service)
        confirmation.confirmed_at.FromDatetime(at)
    message.complete = not message.pending_services
    return message


def audit_event(row: AuditLog) -> auth_pb2.AuditEvent:
    """An audit row as the API shows it (ids base62, time as a Timestamp)."""
    occurred = Timestamp()
    occurred.FromDatetime(row.occurred_at)
    details = Struct()
    if row.details:
        details.update(row.details)
    return auth_pb2.AuditEvent(
        id=ids.encode(row.id),
        occurred_at=occurred,
        actor_id=ids.encode(row.actor_id) if row.actor_id else "",
        actor_ip=str(row.actor_ip or ""),
        action=row.action,
        resource_type=row.resource_type or "",
        resource_id=row.resource_id or "",
        details=details,
        success=row.success,
        request_id=row.request_id or "",
    )
