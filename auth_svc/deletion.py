"""Account deletion: the user (with their password) or an admin deletes an account.

auth_svc's part is synchronous, in one transaction: the account row goes (the email is free to
register again), the user's audit rows keep only their id, a deletion row records when and by
whom, and one users.deleted.v1 event goes to the outbox. Then every session of the user is
revoked. The other services erase their part when they consume the event (meshkit.user_deletion)
and confirm here; `status` shows who has.

Retries: a deletion that already happened answers itself, and revokes the sessions again (the
first attempt may have committed and then failed to reach Redis). A self-deletion that succeeded
closed the session it came with, so its retry is told 401 at the edge.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.auth.v1 import auth_pb2

from auth_svc import rules
from auth_svc.passwords import PasswordHasher
from auth_svc.session_store import SessionStore
from auth_svc.store import AuditEntry, AuthStore, Deletion, Outgoing
from meshkit import ids, topics
from meshkit.context import Caller
from meshkit.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from meshkit.user_deletion import PARTIES

SERVICE = "auth_svc"
# Every service that must confirm, auth_svc (at once) first.
CONFIRMING: tuple[str, ...] = (SERVICE, *PARTIES)


@dataclass(frozen=True)
class Deletions:
    store: AuthStore
    sessions: SessionStore
    hasher: PasswordHasher
    wake_outbox: Callable[[], None] | None = None

    async def delete_own(self, user_id: uuid.UUID, password: str) -> Deletion:
        """The caller's own account, once the password is proven (PERMISSION_DENIED otherwise)."""
        done = await self._already(user_id)
        if done is not None:
            return done
        account = await self.store.account(user_id)
        if account is None:
            raise Unauthenticated("the session's user no longer exists")
        entry = AuditEntry.on_user(rules.ACCOUNT_DELETE, user_id, "")  # no address: theirs goes
        if not password or not await self.hasher.verify(password, account.user.password_hash):
            await self.store.append_audit(entry.with_details(success=False, reason="wrong_password"))
            raise PermissionDenied("password is not correct")
        return await self._delete(user_id, None, entry)

    async def delete_by_admin(self, caller: Caller, user_id: uuid.UUID, reason: str, ip: str) -> Deletion:
        admin_id = caller.require_role(rules.ADMIN)
        if admin_id == user_id:
            raise InvalidArgument("an admin deletes their own account with DELETE /api/account")
        done = await self._already(user_id)
        if done is not None:
            return done
        entry = AuditEntry.on_user(
            rules.ACCOUNT_DELETE, user_id, ip, actor_id=admin_id, details={"reason": reason}
        )
        return await self._delete(user_id, admin_id, entry)

    async def status(self, caller: Caller, user_id: uuid.UUID) -> Deletion:
        caller.require_role(rules.ADMIN)
        found = await self.store.deletion(user_id)
        if found is None:
            raise NotFound(f"user {ids.encode(user_id)} has not been deleted")
        return found

    async def confirm(self, user_id: uuid.UUID, service: str) -> None:
        """A service's confirmation; one for a deletion auth does not know is refused (NOT_FOUND)."""
        if service not in PARTIES:
            raise InvalidArgument(f"service must be one of {', '.join(PARTIES)}; got {service!r}")
        entry = AuditEntry.on_user(rules.DELETION_CONFIRMED, user_id, "", details={"service": service})
        if not await self.store.confirm_deletion(user_id, service, entry):
            raise NotFound(f"user {ids.encode(user_id)} has not been deleted")

    async def _already(self, user_id: uuid.UUID) -> Deletion | None:
        found = await self.store.deletion(user_id)
        if found is not None:
            await self.sessions.revoke_all(user_id)
        return found

    async def _delete(
        self, user_id: uuid.UUID, requested_by: uuid.UUID | None, entry: AuditEntry
    ) -> Deletion:
        deleted_at = Timestamp()
        deleted_at.GetCurrentTime()
        event = auth_pb2.UserDeletedEvent(
            event_id=str(uuid.uuid4()),
            user_id=ids.encode(user_id),
            deleted_at=deleted_at,
            pseudonym=ids.encode(uuid.uuid4()),
        )
        outgoing = Outgoing(topics.USERS_DELETED.name, ids.encode(user_id), event.SerializeToString())
        # The row goes first: a login racing this finds no account, or left a session in the
        # user's index that the revocation below finds.
        deletion = await self.store.delete_account(user_id, requested_by, SERVICE, outgoing, entry)
        if self.wake_outbox is not None:
            self.wake_outbox()
        await self.sessions.revoke_all(user_id)
        return deletion


def pending(deletion: Deletion) -> list[str]:
    """The services still to confirm, in registry order."""
    return [service for service in CONFIRMING if service not in deletion.confirmations]
