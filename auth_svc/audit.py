"""The audit log: one append-only table owned by auth_svc, which every service writes through.

auth's own actions are audited in the transaction of the change they describe (see store.py);
this module takes events other services record through RecordAuditEvent, and shows the log to
admins.
"""

from __future__ import annotations

from auth_svc import rules
from auth_svc.models import AuditLog
from auth_svc.store import AuditEntry, AuditFilter, AuthStore
from meshkit.context import Caller
from meshkit.paging import Window


class AuditTrail:
    def __init__(self, store: AuthStore) -> None:
        self.store = store

    async def record(self, entry: AuditEntry) -> AuditLog:
        """Append another service's event, once the columns can hold it."""
        rules.check_audit_event(entry.action, entry.resource_type, entry.actor_ip, entry.request_id)
        return await self.store.append_audit(entry)

    async def events(self, caller: Caller, where: AuditFilter, page: Window) -> tuple[list[AuditLog], int]:
        """A page of events, newest first, and the total: for admins only."""
        caller.require_role(rules.ADMIN)
        return await self.store.list_audit(where, page.offset, page.limit)
