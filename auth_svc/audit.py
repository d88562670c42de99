"""Audit events: the seed's "Audit Logging", one append-only table owned by auth_svc.

Actions are named `<resource>.<verb>`; this module names the ones auth_svc records itself and
checks events other services send through RecordAuditEvent. Details never hold secrets
(no passwords, no tokens).
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshkit.context import current_request_id
from meshkit.errors import InvalidArgument

LOGIN = "user.login"
LOGOUT = "user.logout"
LOGOUT_EVERYWHERE = "user.logout_everywhere"
REGISTER = "user.register"
PASSWORD_CHANGE = "user.password_change"
EMAIL_CHANGE = "user.email_change"
SUBSCRIPTION_UPGRADE = "subscription.upgrade"
SUBSCRIPTION_DOWNGRADE = "subscription.downgrade"
BAN = "user.ban"
UNBAN = "user.unban"
ROLES_SET = "user.roles_set"

MAX_ACTION = 100
MAX_RESOURCE_TYPE = 50


@dataclass(frozen=True)
class AuditEntry:
    """One row to append; request_id defaults to the request being served."""

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


def check_entry(entry: AuditEntry) -> AuditEntry:
    """Reject what the audit_logs columns cannot hold (an event from another service)."""
    if not entry.action.strip():
        raise InvalidArgument("event.action is required")
    if len(entry.action) > MAX_ACTION:
        raise InvalidArgument(f"event.action must be at most {MAX_ACTION} characters")
    if len(entry.resource_type) > MAX_RESOURCE_TYPE:
        raise InvalidArgument(f"event.resource_type must be at most {MAX_RESOURCE_TYPE} characters")
    if entry.actor_ip:
        try:
            ipaddress.ip_address(entry.actor_ip)
        except ValueError:
            raise InvalidArgument(f"event.actor_ip {entry.actor_ip!r} is not an IP address") from None
    if len(entry.request_id) > 128:
        raise InvalidArgument("event.request_id must be at most 128 characters")
    return entry
