"""Who may change which catalog entities.

Admins may change anything. A user with role `artist` may change only what belongs to the
artists they manage; that list is auth_svc's data (auth.user_artists), so it is asked for on
each write (clients.Auth). Reads need no permission. Roles come from the x-user-roles metadata
that Envoy sets after authenticating the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from catalog_svc.clients import Auth
from meshkit import ids
from meshkit.context import Caller, current_caller
from meshkit.errors import PermissionDenied

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


def check_writer(caller: Caller | None = None) -> Caller:
    """The caller, if signed in (else UNAUTHENTICATED) with a writing role (else PERMISSION_DENIED).

    Cheap (metadata only), so writes call it before judging anything about the request.
    """
    caller = caller or current_caller()
    caller.require_role(*WRITER_ROLES)
    return caller


class Permissions:
    """Resolves the current caller into an Editor (an admin at once, anyone else through auth_svc)."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def editor(self) -> Editor:
        caller = check_writer()
        assert caller.user_id is not None  # check_writer guarantees it
        if caller.has_role("admin"):
            return Editor(caller.user_id, None)
        account = await self.auth.account()
        if account.banned:
            raise PermissionDenied("the account is banned")
        return Editor(caller.user_id, account.artist_ids)
