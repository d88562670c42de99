"""SQL for the auth schema. Every change commits together with its audit row, or not at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_svc.models import (
    AuditLog,
    DataExport,
    DeletionConfirmation,
    OutboxEvent,
    User,
    UserArtist,
    UserDeletion,
    UserRole,
)
from meshkit import ids
from meshkit.context import current_request_id
from meshkit.db import SqlStore
from meshkit.errors import AlreadyExists, NotFound

UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class Account:
    """A user with the roles and artist pages attached to it."""

    user: User
    roles: frozenset[str]
    artist_ids: list[uuid.UUID]

    @property
    def product(self) -> str:
        return "premium" if "premium" in self.roles else "free"


@dataclass(frozen=True)
class AuditEntry:
    """One audit row to append; request_id defaults to the request being served."""

    action: str
    success: bool = True
    actor_id: uuid.UUID | None = None
    actor_ip: str = ""
    resource_type: str = ""
    resource_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    request_id: str = field(default_factory=current_request_id)
    # When it happened, if not now (an event another service recorded earlier).
    occurred_at: datetime | None = None

    @classmethod
    def on_user(
        cls,
        action: str,
        user_id: uuid.UUID,
        ip: str,
        *,
        actor_id: uuid.UUID | None = None,
        success: bool = True,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """An action on a user's account, by that user unless `actor_id` (an admin) says otherwise."""
        return cls(
            action,
            success=success,
            actor_id=user_id if actor_id is None else actor_id,
            actor_ip=ip,
            resource_type="user",
            resource_id=ids.encode(user_id),
            details=details or {},
        )

    def with_details(self, *, success: bool | None = None, **details: object) -> AuditEntry:
        """A copy with more details (and, optionally, another outcome)."""
        return replace(
            self,
            details={**self.details, **details},
            success=self.success if success is None else success,
        )


@dataclass(frozen=True)
class Deletion:
    """A deleted account's erasure: when, by whom (None: the user), and who has confirmed it."""

    user_id: uuid.UUID
    requested_at: datetime
    requested_by: uuid.UUID | None
    confirmations: dict[str, datetime]


@dataclass(frozen=True)
class Outgoing:
    """An event for the outbox, written in the transaction of the change it announces."""

    topic: str
    key: str
    payload: bytes


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor_id: uuid.UUID | None = None
    resource_type: str = ""
    since: datetime | None = None
    until: datetime | None = None


def _account_query() -> Select:
    """A user's columns with its roles and artist ids aggregated in: one round trip per account."""
    roles = (
        select(func.array_agg(UserRole.role))
        .where(UserRole.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    artists = (
        select(func.array_agg(UserArtist.artist_id))
        .where(UserArtist.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    return select(*User.__table__.c, roles.label("_roles"), artists.label("_artists"))


# Built once: constructing a Select per call costs more CPU than running it.
_ACCOUNT_BY_ID = _account_query().where(User.id == bindparam("user_id"))
_ACCOUNT_BY_EMAIL = _account_query().where(func.lower(User.email) == bindparam("email"))


def _account(row: RowMapping) -> Account:
    values = dict(row)
    roles, artists = values.pop("_roles"), values.pop("_artists")
    return Account(user=User(**values), roles=frozenset(roles or ()), artist_ids=sorted(artists or ()))


def _is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION


def audit_row(entry: AuditEntry) -> AuditLog:
    row = AuditLog(
        actor_id=entry.actor_id,
        actor_ip=entry.actor_ip or None,
        action=entry.action,
        resource_type=entry.resource_type or None,
        resource_id=entry.resource_id or None,
        details=entry.details or None,
        success=entry.success,
        request_id=entry.request_id or None,
    )
    if entry.occurred_at is not None:
        row.occurred_at = entry.occurred_at
    return row


class AuthStore(SqlStore):
    # ---- reads -------------------------------------------------------------------------------

    async def account(self, user_id: uuid.UUID) -> Account | None:
        return await self._one_account(_ACCOUNT_BY_ID, {"user_id": user_id})

    async def require_account(self, user_id: uuid.UUID) -> Account:
        """The account, or NotFound."""
        account = await self.account(user_id)
        if account is None:
            raise NotFound(f"user {ids.encode(user_id)} not found")
        return account

    async def account_by_email(self, email: str) -> Account | None:
        """Lookup by normalised email (the unique index is on lower(email))."""
        return await self._one_account(_ACCOUNT_BY_EMAIL, {"email": email.lower()})

    async def _one_account(self, query: Select, params: dict[str, object]) -> Account | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(query, params)).mappings().one_or_none()
            return _account(row) if row else None

    async def email_taken(self, email: str) -> bool:
        async with self.sessions() as session:
            found = await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
            return found is not None

    async def list_users(self, query: str, offset: int, limit: int) -> tuple[list[Account], int]:
        """A page of users, oldest first, optionally filtered on email or display name."""
        condition = None
        if query:
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            condition = or_(User.email.ilike(pattern), User.display_name.ilike(pattern))
        async with self.sessions() as session:
            count = select(func.count()).select_from(User)
            page = _account_query().order_by(User.created_at, User.id).offset(offset).limit(limit)
            if condition is not None:
                count, page = count.where(condition), page.where(condition)
            total = int(await session.scalar(count) or 0)
            rows = (await session.execute(page)).mappings().all()
            return [_account(row) for row in rows], total

    async def list_audit(self, where: AuditFilter, offset: int, limit: int) -> tuple[list[AuditLog], int]:
        """A page of audit events, newest first."""
        conditions = []
        if where.action:
            conditions.append(AuditLog.action == where.action)
        if where.actor_id is not None:
            conditions.append(AuditLog.actor_id == where.actor_id)
        if where.resource_type:
            conditions.append(AuditLog.resource_type == where.resource_type)
        if where.since is not None:
            conditions.append(AuditLog.occurred_at >= where.since)
        if where.until is not None:
            conditions.append(AuditLog.occurred_at < where.until)
        async with self.sessions() as session:
            total = int(
                await session.scalar(select(func.count()).select_from(AuditLog).where(*conditions)) or 0
            )
            rows = await session.scalars(
                select(AuditLog)
                .where(*conditions)
                .order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows), total

    # ---- writes (each with its audit row, in one transaction) --------------------------------

    async def append_audit(self, entry: AuditEntry) -> AuditLog:
        async with self.sessions() as session, session.begin():
            row = audit_row(entry)
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return row

    async def create_account(
        self,
        *,
        email: str,
        password_hash: str,
        display_name: str,
        country: str | None,
        audit: AuditEntry,
    ) -> Account:
        """Insert a user with role `user`; AlreadyExists when the email is taken."""
        user_id = uuid.uuid4()
        try:
            async with self.sessions() as session, session.begin():
                session.add(
                    User(
                        id=user_id,
                        email=email,
                        password_hash=password_hash,
                        display_name=display_name,
                        country=country,
                    )
                )
                await session.flush()
                session.add(UserRole(user_id=user_id, role="user"))
                session.add(audit_row(replace(audit, actor_id=user_id, resource_id=ids.encode(user_id))))
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise AlreadyExists(f"an account with email {email} already exists") from None
            raise
        return await self.require_account(user_id)

    async def record_login(self, user_id: uuid.UUID, audit: AuditEntry) -> bool:
        """Stamp last_login_at and audit the login, unless the user was banned meanwhile (False).

        Called after the session exists: a ban committed before this sees the flag here, and a
        ban committed after it finds the session in the user's index and revokes it.
        """
        async with self.sessions() as session, session.begin():
            stamped = await session.scalar(
                update(User)
                .where(User.id == user_id, User.banned.is_(False))
                .values(last_login_at=func.now())
                .returning(User.id)
            )
            if stamped is None:
                return False
            session.add(audit_row(audit))
            return True

    async def set_password(self, user_id: uuid.UUID, password_hash: str, audit: AuditEntry) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(User)
                .where(User.id == user_id)
                .values(password_hash=password_hash, updated_at=func.now())
            )
            session.add(audit_row(audit))

    async def set_email(self, user_id: uuid.UUID, email: str, audit: AuditEntry) -> Account:
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(User).where(User.id == user_id).values(email=email, updated_at=func.now())
                )
                session.add(audit_row(audit))
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise AlreadyExists(f"an account with email {email} already exists") from None
            raise
        return await self.require_account(user_id)

    async def set_roles(
        self,
        user_id: uuid.UUID,
        roles: Iterable[str],
        audit: AuditEntry,
        *,
        artist_ids: Iterable[uuid.UUID] | None = None,
        granted_by: uuid.UUID | None = None,
    ) -> Account:
        """Replace a user's roles (and, when given, the artists they manage)."""
        roles = set(roles)
        async with self.sessions() as session, session.begin():
            await self._lock(session, user_id)
            current = set(await session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))
            if current - roles:
                await session.execute(
                    delete(UserRole).where(UserRole.user_id == user_id, UserRole.role.in_(current - roles))
                )
            session.add_all(
                UserRole(user_id=user_id, role=role, granted_by=granted_by)
                for role in sorted(roles - current)
            )
            if artist_ids is not None:
                wanted = set(artist_ids)
                have = set(
                    await session.scalars(select(UserArtist.artist_id).where(UserArtist.user_id == user_id))
                )
                if have - wanted:
                    await session.execute(
                        delete(UserArtist).where(
                            UserArtist.user_id == user_id, UserArtist.artist_id.in_(have - wanted)
                        )
                    )
                session.add_all(
                    UserArtist(user_id=user_id, artist_id=a, granted_by=granted_by) for a in wanted - have
                )
            session.add(audit_row(audit))
        return await self.require_account(user_id)

    async def set_role(self, user_id: uuid.UUID, role: str, present: bool, audit: AuditEntry) -> Account:
        """Grant or revoke one role (e.g. premium on a plan change) without touching the others."""
        async with self.sessions() as session, session.begin():
            await self._lock(session, user_id)
            has = await session.scalar(
                select(UserRole.role).where(UserRole.user_id == user_id, UserRole.role == role)
            )
            if present and has is None:
                session.add(UserRole(user_id=user_id, role=role))
            elif not present and has is not None:
                await session.execute(
                    delete(UserRole).where(UserRole.user_id == user_id, UserRole.role == role)
                )
            session.add(audit_row(audit))
        return await self.require_account(user_id)

    async def set_banned(self, user_id: uuid.UUID, banned: bool, reason: str, audit: AuditEntry) -> Account:
        """Ban (banned_at = now, as the banned_at_set constraint requires) or lift a ban."""
        values = (
            {"banned": True, "banned_at": func.now(), "ban_reason": reason or None}
            if banned
            else {"banned": False, "banned_at": None, "ban_reason": None}
        )
        async with self.sessions() as session, session.begin():
            await self._lock(session, user_id)
            await session.execute(
                update(User).where(User.id == user_id).values(**values, updated_at=func.now())
            )
            session.add(audit_row(audit))
        return await self.require_account(user_id)

    # ---- account deletion ----------------------------------------------------------------------

    async def delete_account(
        self,
        user_id: uuid.UUID,
        requested_by: uuid.UUID | None,
        confirmed_by: str,
        event: Outgoing,
        audit: AuditEntry,
    ) -> Deletion:
        """In one transaction: record the deletion (auth's own part confirmed), scrub the user's
        audit rows down to their id, delete the account (roles and artist grants go with it), and
        store the event that tells the other services. NotFound when there is no such account."""
        key = ids.encode(user_id)
        async with self.sessions() as session, session.begin():
            await self._lock(session, user_id)
            email = await session.scalar(select(User.email).where(User.id == user_id))
            session.add(UserDeletion(user_id=user_id, requested_by=requested_by))
            await session.flush()
            session.add(DeletionConfirmation(user_id=user_id, service=confirmed_by))
            # The audit trail keeps what happened and the user's id; not their addresses, their
            # email (failed logins name the email they tried) or any details.
            about = AuditLog.resource_type == "user", AuditLog.resource_id.in_([key, email])
            await session.execute(
                update(AuditLog).where(or_(and_(*about), AuditLog.actor_id == user_id)).values(details=None)
            )
            await session.execute(update(AuditLog).where(AuditLog.actor_id == user_id).values(actor_ip=None))
            await session.execute(update(AuditLog).where(*about).values(resource_id=key))
            await session.execute(delete(User).where(User.id == user_id))
            await session.execute(delete(DataExport).where(DataExport.user_id == user_id))
            session.add(OutboxEvent(topic=event.topic, key=event.key, payload=event.payload))
            session.add(audit_row(audit))
        deletion = await self.deletion(user_id)
        assert deletion is not None
        return deletion

    async def deletion(self, user_id: uuid.UUID) -> Deletion | None:
        async with self.sessions() as session:
            row = await session.get(UserDeletion, user_id)
            if row is None:
                return None
            confirmed = await session.execute(
                select(DeletionConfirmation.service, DeletionConfirmation.confirmed_at).where(
                    DeletionConfirmation.user_id == user_id
                )
            )
            return Deletion(row.user_id, row.requested_at, row.requested_by, dict(confirmed.tuples().all()))

    async def confirm_deletion(self, user_id: uuid.UUID, service: str, audit: AuditEntry) -> bool:
        """Record `service`'s confirmation (the first one is audited); False when no such deletion."""
        async with self.sessions() as session, session.begin():
            if await session.get(UserDeletion, user_id) is None:
                return False
            added = await session.scalar(
                pg_insert(DeletionConfirmation)
                .values(user_id=user_id, service=service)
                .on_conflict_do_nothing()
                .returning(DeletionConfirmation.service)
            )
            if added is not None:
                session.add(audit_row(audit))
        return True

    # ---- helpers -----------------------------------------------------------------------------

    async def _lock(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Lock the user's row for this transaction; NotFound when there is none."""
        found = await session.scalar(select(User.id).where(User.id == user_id).with_for_update())
        if found is None:
            raise NotFound(f"user {ids.encode(user_id)} not found")
