"""User administration (`/api/admin/*`): list users, ban and unban them, set their roles.

Envoy has already authenticated the caller; the admin role is checked here, on every call,
because the service is the one place that cannot be routed around. A ban or a role change takes
effect on the user's very next request: their live sessions are revoked or rewritten.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from auth_svc import rules
from auth_svc.session_store import SessionStore
from auth_svc.store import Account, AuditEntry, AuthStore
from meshkit import ids
from meshkit.context import Caller
from meshkit.paging import Window

log = logging.getLogger(__name__)


class Admin:
    def __init__(self, store: AuthStore, sessions: SessionStore) -> None:
        self.store = store
        self.sessions = sessions

    @staticmethod
    def authorize(caller: Caller) -> Caller:
        """PERMISSION_DENIED unless the caller is an admin: checked before a request is even read,
        so a non-admin learns nothing about what the admin API would accept."""
        caller.require_role(rules.ADMIN)
        return caller

    async def list_users(self, caller: Caller, query: str, page: Window) -> tuple[list[Account], int]:
        """A page of users, oldest first, optionally filtered on email or display name; and the total."""
        caller.require_role(rules.ADMIN)
        return await self.store.list_users(query, page.offset, page.limit)

    async def ban(self, caller: Caller, user_id: uuid.UUID, reason: str, ip: str) -> tuple[Account, int]:
        """Ban a user and revoke all their sessions; returns the account and how many were revoked."""
        admin_id = caller.require_role(rules.ADMIN)
        rules.check_ban(admin_id, user_id)
        entry = AuditEntry.on_user(rules.BAN, user_id, ip, actor_id=admin_id, details={"reason": reason})
        # The flag commits first: a login racing this either sees it or left a session that
        # the revocation below finds in the user's index (see Sessions.login).
        account = await self.store.set_banned(user_id, True, reason, entry)
        revoked = await self.sessions.revoke_all(user_id)
        log.info("user banned", extra={"user_id": ids.encode(user_id), "revoked_sessions": revoked})
        return account, revoked

    async def unban(self, caller: Caller, user_id: uuid.UUID, ip: str) -> Account:
        admin_id = caller.require_role(rules.ADMIN)
        entry = AuditEntry.on_user(rules.UNBAN, user_id, ip, actor_id=admin_id)
        return await self.store.set_banned(user_id, False, "", entry)

    async def set_roles(
        self,
        caller: Caller,
        user_id: uuid.UUID,
        roles: Iterable[str],
        artist_ids: list[uuid.UUID],
        ip: str,
    ) -> Account:
        """Replace a user's roles (ROLE_ARTIST with the artists they manage) in their sessions too."""
        admin_id = caller.require_role(rules.ADMIN)
        wanted = rules.check_role_change(admin_id, user_id, roles, artist_ids)
        before = await self.store.require_account(user_id)
        entry = AuditEntry.on_user(
            rules.ROLES_SET,
            user_id,
            ip,
            actor_id=admin_id,
            details={
                "before": sorted(before.roles),
                "after": sorted(wanted),
                "artist_ids": [ids.encode(a) for a in artist_ids],
            },
        )
        updated = await self.store.set_roles(
            user_id, wanted, entry, artist_ids=artist_ids, granted_by=admin_id
        )
        await self.sessions.update_identity(user_id, updated.roles, updated.product)
        return updated
