"""Calls to other services, in catalog's terms: auth_svc says which artists the caller manages,
and keeps the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from meshkit import ids
from meshkit.audit import AuditLog
from meshkit.errors import PermissionDenied, Unauthenticated, Unavailable


@dataclass(frozen=True)
class Account:
    """What auth_svc holds about the calling user that catalog writes depend on."""

    banned: bool
    artist_ids: frozenset[uuid.UUID]


class Auth:
    """auth_svc's GetMe for the current caller (the channel forwards the caller's x-user-* metadata),
    and its audit log."""

    def __init__(self, stub: auth_pb2_grpc.AuthServiceStub) -> None:
        self.stub = stub
        # Appends to auth_svc's audit log (best effort, after the change committed).
        self.audit = AuditLog(stub).record

    async def account(self) -> Account:
        try:
            me = await self.stub.GetMe(auth_pb2.GetMeRequest())
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(exc.details() or "the session is not valid") from exc
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                raise PermissionDenied("your account cannot manage artists") from exc
            raise Unavailable("cannot check your artist permissions right now; retry") from exc
        if me.banned:
            return Account(banned=True, artist_ids=frozenset())
        return Account(
            banned=False, artist_ids=frozenset(ids.decode(a, what="artist id") for a in me.artist_ids)
        )
