"""Accounts and sessions: register, log in and out, change credentials, plan, roles and bans.

The rules of the seed's "Authentication" and "Admin API Boundaries" live here, on plain values;
the servicers only translate protobuf. Every sensitive action leaves an audit row, written in the
same transaction as the change it describes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from auth_svc import accounts, audit
from auth_svc.audit import AuditEntry
from auth_svc.passwords import PasswordHasher, check_new_password
from auth_svc.sessions import Session, SessionStore
from auth_svc.store import Account, AuthStore
from meshkit import ids
from meshkit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid credentials"


@dataclass(frozen=True)
class LoginResult:
    token: str
    account: Account


class Identity:
    def __init__(self, store: AuthStore, sessions: SessionStore, hasher: PasswordHasher) -> None:
        self.store = store
        self.sessions = sessions
        self.hasher = hasher

    # ---- self-service ------------------------------------------------------------------------

    async def register(
        self, *, email: str, password: str, display_name: str, country: str, ip: str
    ) -> Account:
        """Create an account (role user, product free). Validates everything before storing."""
        normalised = accounts.check_email(email)
        check_new_password(password)
        name = accounts.check_display_name(
            display_name, default=normalised.split("@")[0][: accounts.MAX_DISPLAY_NAME]
        )
        country_code = accounts.check_country(country)
        if await self.store.email_taken(normalised):  # before paying for a bcrypt hash
            raise_taken(normalised)
        password_hash = await self.hasher.hash(password)
        return await self.store.create_account(
            email=normalised,
            password_hash=password_hash,
            display_name=name,
            country=country_code,
            audit=AuditEntry(audit.REGISTER, actor_ip=ip, resource_type="user"),
        )

    async def login(self, *, email: str, password: str, ip: str) -> LoginResult:
        """Check the password and open a session.

        Unknown email and wrong password are one answer (401) in one timing class: both pay for
        exactly one bcrypt verification and one audit insert. A banned account is told so (403),
        but only after its password was proven, so bans cannot be probed.
        """
        normalised = accounts.normalise_email(email)
        if not normalised or not password:
            raise InvalidArgument("email and password are required")
        account = await self.store.account_by_email(normalised) if len(normalised) <= 320 else None
        matches = await self.hasher.verify(password, account.user.password_hash if account else None)
        failure = AuditEntry(
            audit.LOGIN, success=False, actor_ip=ip, resource_type="user", resource_id=normalised
        )
        if account is None or not matches:
            await self.store.append_audit(_details(failure, reason="invalid_credentials"))
            raise Unauthenticated(INVALID_CREDENTIALS)
        user_id = account.user.id
        if account.user.banned:
            await self.store.append_audit(_details(failure, reason="banned", user_id=ids.encode(user_id)))
            raise PermissionDenied("this account is banned")
        token = await self.sessions.create(
            user_id, account.roles, account.product, ip, country=account.user.country or ""
        )
        success = AuditEntry(
            audit.LOGIN, actor_id=user_id, actor_ip=ip, resource_type="user", resource_id=ids.encode(user_id)
        )
        if not await self.store.record_login(user_id, success):  # banned while we were checking
            await self.sessions.revoke(token)
            await self.store.append_audit(_details(failure, reason="banned", user_id=ids.encode(user_id)))
            raise PermissionDenied("this account is banned")
        return LoginResult(token=token, account=account)

    async def logout(self, user_id: uuid.UUID, token: str, ip: str) -> None:
        """Close the session the request came with."""
        if not token:
            raise Unauthenticated("no session to close: send the session cookie or a Bearer token")
        closed = await self.sessions.revoke(token)
        await self.store.append_audit(
            AuditEntry(
                audit.LOGOUT,
                success=closed,
                actor_id=user_id,
                actor_ip=ip,
                resource_type="user",
                resource_id=ids.encode(user_id),
            )
        )

    async def logout_everywhere(self, user_id: uuid.UUID, ip: str) -> int:
        revoked = await self.sessions.revoke_all(user_id)
        await self.store.append_audit(
            AuditEntry(
                audit.LOGOUT_EVERYWHERE,
                actor_id=user_id,
                actor_ip=ip,
                resource_type="user",
                resource_id=ids.encode(user_id),
                details={"revoked_sessions": revoked},
            )
        )
        return revoked

    async def validate(self, token: str, *, touch: bool) -> Session | None:
        return await self.sessions.get(token, touch=touch)

    async def account(self, user_id: uuid.UUID) -> Account:
        found = await self.store.account(user_id)
        if found is None:
            raise NotFound(f"user {ids.encode(user_id)} not found")
        return found

    async def change_password(self, user_id: uuid.UUID, token: str, current: str, new: str, ip: str) -> int:
        """Set a new password and close every other session; returns how many were closed."""
        check_new_password(new, field="new_password")
        account = await self.account(user_id)
        entry = AuditEntry(
            audit.PASSWORD_CHANGE,
            actor_id=user_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
        )
        if not await self.hasher.verify(current, account.user.password_hash):
            await self.store.append_audit(_details(entry, success=False, reason="wrong_password"))
            raise PermissionDenied("current_password is not correct")
        await self.store.set_password(user_id, await self.hasher.hash(new), entry)
        return await self.sessions.revoke_all(user_id, keep_token=token)

    async def change_email(self, user_id: uuid.UUID, new_email: str, password: str, ip: str) -> Account:
        normalised = accounts.check_email(new_email, field="new_email")
        account = await self.account(user_id)
        entry = AuditEntry(
            audit.EMAIL_CHANGE,
            actor_id=user_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
        )
        if not await self.hasher.verify(password, account.user.password_hash):
            await self.store.append_audit(_details(entry, success=False, reason="wrong_password"))
            raise PermissionDenied("password is not correct")
        if normalised == account.user.email:
            return account
        if await self.store.email_taken(normalised):
            raise_taken(normalised)
        return await self.store.set_email(
            user_id, normalised, _details(entry, before=account.user.email, after=normalised)
        )

    async def update_subscription(self, user_id: uuid.UUID, product: str, ip: str) -> Account:
        """Switch between free and premium (the premium role), audited with before and after."""
        wanted = accounts.check_product(product)
        account = await self.account(user_id)
        if account.product == wanted:
            return account
        action = audit.SUBSCRIPTION_UPGRADE if wanted == "premium" else audit.SUBSCRIPTION_DOWNGRADE
        entry = AuditEntry(
            action,
            actor_id=user_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
            details={"before": account.product, "after": wanted},
        )
        updated = await self.store.set_role(user_id, "premium", wanted == "premium", entry)
        await self.sessions.update_identity(user_id, updated.roles, updated.product)
        return updated

    # ---- administration ----------------------------------------------------------------------

    async def ban(self, admin_id: uuid.UUID, user_id: uuid.UUID, reason: str, ip: str) -> tuple[Account, int]:
        """Ban a user and revoke all their sessions; their very next request is refused."""
        if user_id == admin_id:
            raise FailedPrecondition("an admin cannot ban themselves")
        entry = AuditEntry(
            audit.BAN,
            actor_id=admin_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
            details={"reason": reason},
        )
        # The flag commits first: a login racing this either sees it or left a session that
        # the revocation below finds in the user's index (see Identity.login).
        account = await self.store.set_banned(user_id, True, reason, entry)
        revoked = await self.sessions.revoke_all(user_id)
        log.info("user banned", extra={"user_id": ids.encode(user_id), "revoked_sessions": revoked})
        return account, revoked

    async def unban(self, admin_id: uuid.UUID, user_id: uuid.UUID, ip: str) -> Account:
        entry = AuditEntry(
            audit.UNBAN, actor_id=admin_id, actor_ip=ip, resource_type="user", resource_id=ids.encode(user_id)
        )
        return await self.store.set_banned(user_id, False, "", entry)

    async def set_roles(
        self,
        admin_id: uuid.UUID,
        user_id: uuid.UUID,
        roles: Iterable[str],
        artist_ids: list[uuid.UUID],
        ip: str,
    ) -> Account:
        """Replace a user's roles; ROLE_ARTIST needs the artists they manage."""
        wanted = accounts.check_roles(roles)
        if "artist" in wanted and not artist_ids:
            raise InvalidArgument("artist_ids is required with ROLE_ARTIST")
        if artist_ids and "artist" not in wanted:
            raise InvalidArgument("artist_ids is only allowed with ROLE_ARTIST")
        if user_id == admin_id and "admin" not in wanted:
            raise FailedPrecondition("an admin cannot remove their own admin role")
        before = await self.account(user_id)
        entry = AuditEntry(
            audit.ROLES_SET,
            actor_id=admin_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
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


def raise_taken(email: str) -> None:
    raise AlreadyExists(f"an account with email {email} already exists")


def _details(entry: AuditEntry, *, success: bool | None = None, **details: object) -> AuditEntry:
    """A copy of `entry` with more details (and, optionally, another outcome)."""
    return replace(
        entry,
        details={**entry.details, **details},
        success=entry.success if success is None else success,
    )
