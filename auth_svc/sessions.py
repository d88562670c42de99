"""Sessions: log in and out, and who a session token belongs to (for Envoy and internal callers).

A session is an opaque token in Redis (session_store.py) carrying the user's roles, product and
country, so that Envoy's ext_authz is answered from Redis alone on every request.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from redis.exceptions import RedisError

from auth_svc import rules
from auth_svc.passwords import PasswordHasher
from auth_svc.session_store import Session, SessionStore
from auth_svc.store import Account, AuditEntry, AuthStore
from meshkit import ids
from meshkit.errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable
from meshkit.text import has_control_characters

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid credentials"


@dataclass(frozen=True)
class LoginResult:
    """A new session: its token (shown to the client this once, never stored) and the account."""

    token: str
    account: Account


@dataclass(frozen=True)
class Validation:
    """A live session and its account, for an internal caller holding the token."""

    session: Session
    account: Account
    # When the session expires unless used again (Unix seconds).
    expires_at: int


@dataclass(frozen=True)
class Sessions:
    store: AuthStore
    sessions: SessionStore
    hasher: PasswordHasher

    async def login(self, *, email: str, password: str, ip: str) -> LoginResult:
        """Check the password and open a session.

        Unknown email and wrong password are one answer (401) in one timing class: both pay for
        exactly one bcrypt verification and one audit insert. A banned account is told so (403),
        but only after its password was proven, so bans cannot be probed.
        """
        normalised = rules.normalise_email(email)
        if not normalised or not password:
            raise InvalidArgument("email and password are required")
        if has_control_characters(normalised):
            # No account's email has one (registration checks the form), and PostgreSQL could not
            # even look it up or audit it: malformed input, like a missing field, not a failed login.
            raise InvalidArgument("email is not a valid email address")
        account = (
            await self.store.account_by_email(normalised) if len(normalised) <= rules.MAX_EMAIL else None
        )
        matches = await self.hasher.verify(password, account.user.password_hash if account else None)
        failure = AuditEntry(
            rules.LOGIN, success=False, actor_ip=ip, resource_type="user", resource_id=normalised
        )
        if account is None or not matches:
            await self.store.append_audit(failure.with_details(reason="invalid_credentials"))
            _login_failed(normalised, ip, "unknown_email" if account is None else "invalid_password")
            raise Unauthenticated(INVALID_CREDENTIALS)
        user_id = account.user.id
        banned = failure.with_details(reason="banned", user_id=ids.encode(user_id))
        if account.user.banned:
            await self.store.append_audit(banned)
            _login_failed(normalised, ip, "banned")
            raise PermissionDenied("this account is banned")
        token = await self.sessions.create(
            user_id, account.roles, account.product, ip, country=account.user.country or ""
        )
        # Stamped after the session exists: a ban committed before this is seen here, and one
        # committed after it finds the session in the user's index and revokes it.
        if not await self.store.record_login(user_id, AuditEntry.on_user(rules.LOGIN, user_id, ip)):
            await self.sessions.revoke(token)
            await self.store.append_audit(banned)
            _login_failed(normalised, ip, "banned")
            raise PermissionDenied("this account is banned")
        log.info("user logged in", extra={"user_id": ids.encode(user_id), "action": "login", "ip": ip})
        return LoginResult(token=token, account=account)

    async def logout(self, user_id: uuid.UUID, token: str, ip: str) -> None:
        """Close the session the request came with."""
        if not token:
            raise Unauthenticated("no session to close: send the session cookie or a Bearer token")
        closed = await self.sessions.revoke(token)
        await self.store.append_audit(AuditEntry.on_user(rules.LOGOUT, user_id, ip, success=closed))

    async def logout_everywhere(self, user_id: uuid.UUID, ip: str) -> int:
        revoked = await self.sessions.revoke_all(user_id)
        await self.store.append_audit(
            AuditEntry.on_user(rules.LOGOUT_EVERYWHERE, user_id, ip, details={"revoked_sessions": revoked})
        )
        return revoked

    async def authorize(self, token: str) -> Session | None:
        """The live session behind a request's token (its sliding expiry restarts), or None.

        An unreachable Redis is Unavailable, never "no session": Envoy turns the error into its
        status_on_error (503), so the edge fails closed.
        """
        try:
            return await self.sessions.get(token, touch=True)
        except RedisError as exc:
            log.error("session store unreachable", extra={"error": str(exc)})
            raise Unavailable("session store unavailable") from None

    async def validate(self, token: str, *, touch: bool) -> Validation:
        """Who a token belongs to; Unauthenticated for no live session (or a deleted user)."""
        session = await self.sessions.get(token, touch=touch)
        account = await self.store.account(session.user_id) if session else None
        if session is None or account is None:
            raise Unauthenticated("invalid or expired session")
        expires_at = int(time.time()) + max(await self.sessions.ttl(token), 0)
        return Validation(session=session, account=account, expires_at=expires_at)


def _login_failed(email: str, ip: str, reason: str) -> None:
    """The seed's key event; the reason is for operators only (the client is told less)."""
    log.warning(
        "login attempt failed", extra={"email": email, "action": "login_failed", "ip": ip, "reason": reason}
    )
