"""SQL of data exports: the jobs, their archives, and auth's own part of a user's data.

A job is claimed by one worker at a time (`FOR UPDATE SKIP LOCKED`, then a lease: its
next_attempt_at moves past the time an attempt may take), so replicas share the work and a
worker that dies mid-way leaves the job to be claimed again when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, or_, select, update

from auth_svc.models import AuditLog, DataExport, User, UserArtist, UserRole
from auth_svc.store import AuditEntry, audit_row
from meshkit import ids
from meshkit.db import SqlStore, transaction_lock
from meshkit.user_export import ExportFile
from meshkit.user_export import rows as export_rows


@dataclass(frozen=True, slots=True)
class ExportRow:
    """An export job without its archive (field names are column names)."""

    id: uuid.UUID
    user_id: uuid.UUID
    request_id: str
    state: str
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    attempts: int
    error: str | None
    size_bytes: int | None


_COLUMNS = [getattr(DataExport, name) for name in ExportRow.__slots__]


def _row(found: object) -> ExportRow:
    return ExportRow(*found)  # type: ignore[misc]


class ExportStore(SqlStore):
    async def create(
        self,
        user_id: uuid.UUID,
        request_id: str,
        audit: AuditEntry,
        may_start: Callable[[list[ExportRow]], None],
    ) -> ExportRow:
        """The user's export under `request_id`: the one a retry finds, or a new one (audited) once
        `may_start` has seen the user's exports of the last day and not raised. One user's requests
        take turns (an advisory lock), so two at once cannot both pass the check."""
        async with self.sessions() as session, session.begin():
            await session.execute(transaction_lock(f"auth-data-exports:{user_id}"))
            found = await session.execute(
                select(*_COLUMNS).where(DataExport.user_id == user_id, DataExport.request_id == request_id)
            )
            existing = found.one_or_none()
            if existing is not None:
                return _row(existing)
            recent = await session.execute(
                select(*_COLUMNS)
                .where(
                    DataExport.user_id == user_id,
                    DataExport.requested_at > func.now() - dt.timedelta(days=1),
                )
                .order_by(DataExport.requested_at)
            )
            may_start([_row(r) for r in recent])
            created = await session.execute(
                insert(DataExport).values(user_id=user_id, request_id=request_id).returning(*_COLUMNS)
            )
            row = _row(created.one())
            session.add(audit_row(audit.with_details(export_id=ids.encode(row.id))))
            return row

    async def get(self, user_id: uuid.UUID, export_id: uuid.UUID) -> ExportRow | None:
        async with self.sessions() as session:
            found = await session.execute(
                select(*_COLUMNS).where(DataExport.id == export_id, DataExport.user_id == user_id)
            )
            row = found.one_or_none()
            return _row(row) if row is not None else None

    async def claim(self, lease_s: float) -> ExportRow | None:
        """The oldest due pending export, leased to the caller for `lease_s` (attempts counted)."""
        async with self.sessions() as session, session.begin():
            due = await session.scalar(
                select(DataExport.id)
                .where(DataExport.state == "pending", DataExport.next_attempt_at <= func.now())
                .order_by(DataExport.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if due is None:
                return None
            found = await session.execute(
                update(DataExport)
                .where(DataExport.id == due)
                .values(
                    attempts=DataExport.attempts + 1,
                    next_attempt_at=func.now() + dt.timedelta(seconds=lease_s),
                )
                .returning(*_COLUMNS)
            )
            return _row(found.one())

    async def complete(self, export_id: uuid.UUID, archive: bytes, audit: AuditEntry) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(DataExport)
                .where(DataExport.id == export_id, DataExport.state == "pending")
                .values(
                    state="done",
                    archive=archive,
                    size_bytes=len(archive),
                    completed_at=func.now(),
                    error=None,
                )
            )
            session.add(audit_row(audit))

    async def retry(self, export_id: uuid.UUID, error: str, delay_s: float, max_attempts: int) -> bool:
        """Record a failed attempt: try again after `delay_s`, or fail it for good after
        `max_attempts`; True when it failed for good."""
        async with self.sessions() as session, session.begin():
            attempts = await session.scalar(
                update(DataExport)
                .where(DataExport.id == export_id, DataExport.state == "pending")
                .values(error=error, next_attempt_at=func.now() + dt.timedelta(seconds=delay_s))
                .returning(DataExport.attempts)
            )
            if attempts is None or attempts < max_attempts:
                return False
            await session.execute(update(DataExport).where(DataExport.id == export_id).values(state="failed"))
            return True

    async def archive(self, export_id: uuid.UUID) -> tuple[ExportRow, bytes] | None:
        async with self.sessions() as session:
            found = await session.execute(
                select(*_COLUMNS, DataExport.archive).where(
                    DataExport.id == export_id, DataExport.state == "done"
                )
            )
            row = found.one_or_none()
            if row is None or row.archive is None:
                return None
            return _row(tuple(row)[:-1]), bytes(row.archive)

    async def purge(self, days: int) -> int:
        """Delete exports that finished (done or failed) more than `days` ago; how many went."""
        finished = func.coalesce(DataExport.completed_at, DataExport.requested_at)
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(DataExport).where(
                    DataExport.state != "pending", finished < func.now() - dt.timedelta(days=days)
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def record(self, audit: AuditEntry) -> None:
        async with self.sessions() as session, session.begin():
            session.add(audit_row(audit))

    async def user_part(self, user_id: uuid.UUID) -> list[ExportFile]:
        """What auth holds about the user: the account (not its password hash), roles, artists
        managed, audit entries by or about them (details left out: they can name other people),
        and their exports."""
        key = ids.encode(user_id)
        async with self.sessions() as session:
            account = await session.execute(
                select(
                    User.id,
                    User.email,
                    User.display_name,
                    User.country,
                    User.banned,
                    User.banned_at,
                    User.ban_reason,
                    User.created_at,
                    User.updated_at,
                    User.last_login_at,
                ).where(User.id == user_id)
            )
            roles = await session.execute(
                select(UserRole.role).where(UserRole.user_id == user_id).order_by(UserRole.role)
            )
            artists = await session.execute(
                select(UserArtist.artist_id)
                .where(UserArtist.user_id == user_id)
                .order_by(UserArtist.artist_id)
            )
            by_them = AuditLog.actor_id == user_id
            audit = await session.execute(
                select(
                    AuditLog.occurred_at,
                    AuditLog.action,
                    by_them.label("by_you"),
                    AuditLog.actor_ip,
                    AuditLog.resource_type,
                    AuditLog.resource_id,
                    AuditLog.success,
                )
                .where(or_(by_them, (AuditLog.resource_type == "user") & (AuditLog.resource_id == key)))
                .order_by(AuditLog.occurred_at)
            )
            exports = await session.execute(
                select(*[c for c in _COLUMNS if c.key != "user_id"])
                .where(DataExport.user_id == user_id)
                .order_by(DataExport.requested_at)
            )
            audit_rows = [
                {**row, "actor_ip": str(row["actor_ip"]) if row["by_you"] and row["actor_ip"] else None}
                for row in export_rows(audit.mappings())
            ]
            return [
                ExportFile(
                    "auth/account.json",
                    "Your account, as we keep it (not your password).",
                    export_rows(account.mappings()),
                ),
                ExportFile("auth/roles.json", "Your roles.", export_rows(roles.mappings())),
                ExportFile(
                    "auth/managed_artists.json", "Artists you manage.", export_rows(artists.mappings())
                ),
                ExportFile(
                    "auth/audit_log.json",
                    "Security-relevant actions by you or on your account (by_you false: an admin's).",
                    audit_rows,
                ),
                ExportFile(
                    "auth/data_exports.json",
                    "Your data exports, this one included.",
                    export_rows(exports.mappings()),
                ),
            ]
