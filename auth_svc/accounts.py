"""Accounts: register, read a profile, change password, email and plan.

Every change leaves an audit row, written in the same transaction as the change it describes; a
change that alters what a session carries (the plan) rewrites the user's live sessions too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from auth_svc import rules
from auth_svc.passwords import PasswordHasher
from auth_svc.session_store import SessionStore
from auth_svc.store import Account, AuditEntry, AuthStore
from meshkit import ids
from meshkit.errors import AlreadyExists, NotFound, PermissionDenied, Unauthenticated


@dataclass(frozen=True)
class Accounts:
    store: AuthStore
    sessions: SessionStore
    hasher: PasswordHasher

    async def register(
        self, *, email: str, password: str, display_name: str, country: str, ip: str
    ) -> Account:
        """Create an account (role user, product free). Validates everything before storing."""
        normalised = rules.check_email(email)
        rules.check_new_password(password)
        name = rules.check_display_name(display_name, default=rules.default_display_name(normalised))
        country_code = rules.check_country(country)
        if await self.store.email_taken(normalised):  # before paying for a bcrypt hash
            raise _taken(normalised)
        password_hash = await self.hasher.hash(password)
        return await self.store.create_account(
            email=normalised,
            password_hash=password_hash,
            display_name=name,
            country=country_code,
            audit=AuditEntry(rules.REGISTER, actor_ip=ip, resource_type="user"),
        )

    async def me(self, user_id: uuid.UUID) -> Account:
        """The signed-in user's own account (their session outlived it: Unauthenticated)."""
        account = await self.store.account(user_id)
        if account is None:
            raise Unauthenticated("the session's user no longer exists")
        return account

    async def profile(self, user_id: uuid.UUID) -> Account:
        """Anyone's account as others may see it: a banned user is not found."""
        account = await self.store.account(user_id)
        if account is None or account.user.banned:
            raise NotFound(f"user {ids.encode(user_id)} not found")
        return account

    async def change_password(self, user_id: uuid.UUID, token: str, current: str, new: str, ip: str) -> int:
        """Set a new password and close every other session; returns how many were closed."""
        rules.check_new_password(new, field="new_password")
        account = await self.store.require_account(user_id)
        entry = AuditEntry.on_user(rules.PASSWORD_CHANGE, user_id, ip)
        if not await self.hasher.verify(current, account.user.password_hash):
            await self.store.append_audit(entry.with_details(success=False, reason="wrong_password"))
            raise PermissionDenied("current_password is not correct")
        await self.store.set_password(user_id, await self.hasher.hash(new), entry)
        return await self.sessions.revoke_all(user_id, keep_token=token)

    async def change_email(self, user_id: uuid.UUID, new_email: str, password: str, ip: str) -> Account:
        normalised = rules.check_email(new_email, field="new_email")
        account = await self.store.require_account(user_id)
        entry = AuditEntry.on_user(rules.EMAIL_CHANGE, user_id, ip)
        if not await self.hasher.verify(password, account.user.password_hash):
            await self.store.append_audit(entry.with_details(success=False, reason="wrong_password"))
            raise PermissionDenied("password is not correct")
        if normalised == account.user.email:
            return account
        if await self.store.email_taken(normalised):
            raise _taken(normalised)
        return await self.store.set_email(
            user_id, normalised, entry.with_details(before=account.user.email, after=normalised)
        )

    async def update_subscription(self, user_id: uuid.UUID, product: str, ip: str) -> Account:
        """Cancel premium (drop the premium role), audited with before and after; restating the
        current product changes nothing, so a retry answers the same."""
        wanted = rules.check_product(product)
        account = await self.store.require_account(user_id)
        rules.check_self_service_product(account.product, wanted)
        if account.product == wanted:
            return account
        action = rules.SUBSCRIPTION_DOWNGRADE
        entry = AuditEntry.on_user(action, user_id, ip, details={"before": account.product, "after": wanted})
        updated = await self.store.set_role(user_id, "premium", wanted == "premium", entry)
        await self.sessions.update_identity(user_id, updated.roles, updated.product)
        return updated


def _taken(email: str) -> AlreadyExists:
    return AlreadyExists(f"an account with email {email} already exists")
