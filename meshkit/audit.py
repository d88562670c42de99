"""Appending to auth_svc's audit log from any service, after the audited change has committed.

auth_svc keeps the one audit log (RecordAuditEvent); every other service that audits an action
records it through this, with the request id of the request that did it. Best effort by design:
the change it records has already committed, so when auth_svc cannot take the event it goes to
this service's log instead, as a warning with every field, rather than being lost silently.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import Any, Protocol

from google.protobuf import struct_pb2
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from meshkit import ids
from meshkit.context import current_request_id

log = logging.getLogger(__name__)


class Record(Protocol):
    """What appends one entry (`AuditLog.record`): domain code takes this, not the client."""

    def __call__(
        self,
        *,
        actor: uuid.UUID,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID,
        details: dict[str, Any],
        success: bool,
    ) -> Awaitable[None]: ...


class AuditLog:
    """auth_svc's audit log, over a channel to auth_svc."""

    def __init__(self, stub: auth_pb2_grpc.AuthServiceStub) -> None:
        self.stub = stub

    async def record(
        self,
        *,
        actor: uuid.UUID,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID,
        details: dict[str, Any],
        success: bool,
    ) -> None:
        payload = struct_pb2.Struct()
        payload.update(details)
        event = auth_pb2.AuditEvent(
            actor_id=ids.encode(actor),
            action=action,
            resource_type=resource_type,
            resource_id=ids.encode(resource_id),
            details=payload,
            success=success,
            request_id=current_request_id(),
        )
        try:
            await self.stub.RecordAuditEvent(auth_pb2.RecordAuditEventRequest(event=event))
        except aio.AioRpcError as exc:
            log.warning(
                "audit event not recorded by auth_svc (%s); logged here instead",
                exc.code().name,
                extra={
                    "audit_action": action,
                    "audit_actor": event.actor_id,
                    "audit_resource": f"{resource_type}:{event.resource_id}",
                    "audit_details": details,
                    "audit_success": success,
                    "audit_status": exc.code().name,
                },
            )
