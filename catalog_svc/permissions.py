"""Who may change which catalog entities.

Admins may change anything. A user with role `artist` may change only what belongs to the
artists they manage; that list is auth_svc's data (auth.user_artists), so it is asked for on
each write with auth's GetMe, forwarding the caller's identity (open_channel propagates the
x-user-* metadata). Reads need no permission. Roles come from the x-user-roles metadata that
Envoy sets after authenticating the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from meshkit import ids
from meshkit.context import Caller, current_caller
from meshkit.errors import PermissionDenied, Unauthenticated, Unavailable

WRITER_ROLES = ("admin", "artist")


@dataclass(frozen=True)
class Editor:
    """An authenticated caller allowed to write; `managed` is None for admins (everything)."""

    user_id: uuid.UUID
    managed: frozenset[uuid.UUID] | None

    @property
    def is_admin(self) -> bool:
        return self.managed is None

    def require_manages(self, artist_ids: Iterable[uuid.UUID], what: str) -> None:
        """PERMISSION_DENIED unless the editor is an admin or manages every one of `artist_ids`."""
        if self.managed is None:
            return
        foreign = [a for a in artist_ids if a not in self.managed]
        if foreign:
            raise PermissionDenied(f"you do not manage the artist {ids.encode(foreign[0])} of this {what}")

    def require_admin(self, what: str) -> None:
        if self.managed is not None:
            raise PermissionDenied(f"{what} requires role admin")


class Permissions:
    """Resolves the current caller into an Editor, asking auth_svc which artists they manage."""

    def __init__(self, auth: auth_pb2_grpc.AuthServiceStub) -> None:
        self.auth = auth

    @staticmethod
    def check_writer(caller: Caller | None = None) -> Caller:
        """The caller, if signed in (else UNAUTHENTICATED) with a writing role (else PERMISSION_DENIED).

        Cheap (metadata only), so writes call it before validating anything.
        """
        caller = caller or current_caller()
        caller.require_role(*WRITER_ROLES)
        return caller

    async def editor(self) -> Editor:
        caller = self.check_writer()
        assert caller.user_id is not None  # check_writer guarantees it
        if caller.has_role("admin"):
            return Editor(caller.user_id, None)
        try:
            me = await self.auth.GetMe(auth_pb2.GetMeRequest())
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(exc.details() or "the session is not valid") from exc
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                raise PermissionDenied("your account cannot manage artists") from exc
            raise Unavailable("cannot check your artist permissions right now; retry") from exc
        if me.banned:
            raise PermissionDenied("the account is banned")
        return Editor(caller.user_id, frozenset(ids.decode(a, what="artist id") for a in me.artist_ids))
