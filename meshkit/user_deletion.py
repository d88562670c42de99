"""Account deletion as each service that holds user data takes part in it.

auth_svc deletes the account and publishes one `UserDeletedEvent` on users.deleted.v1 from its
outbox. Every service the topic names as a consumer runs one consumer group of it: for each event
the service erases or anonymises what it holds about the user (its own `erase`, idempotent: a
redelivery or a replay finds nothing left to change), then tells auth_svc it is done
(ConfirmUserDeletion, idempotent too). A batch is retried until both succeed and its offsets are
committed only then, so a service that was down when the account was deleted, or could not reach
auth_svc, finishes when it can; `GET /api/admin/users/{id}/deletion` shows who has confirmed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from meshkit import ids, topics
from meshkit.errors import InvalidArgument, Unavailable

if TYPE_CHECKING:  # kafka-python loads only in a process that consumes
    from meshkit.kafka import AsyncConsumer

log = logging.getLogger(__name__)

# The services that erase a deleted user's data and confirm it, by registry name.
PARTIES: tuple[str, ...] = topics.USERS_DELETED.consumers


@dataclass(frozen=True)
class DeletedUser:
    """What a service needs to erase a user: who, and the pseudonym kept counts move to."""

    user_id: uuid.UUID
    # Random and new for this deletion: the same in every service, so counts stay consistent
    # (one listener stays one listener), and nothing maps it back to the user.
    pseudonym: uuid.UUID


def decode(value: bytes) -> DeletedUser:
    """The event's content; InvalidArgument for a record no deletion could come from."""
    try:
        event = auth_pb2.UserDeletedEvent.FromString(value)
        return DeletedUser(
            ids.decode(event.user_id, what="user_id"), ids.decode(event.pseudonym, what="pseudonym")
        )
    except DecodeError as err:
        raise InvalidArgument(f"not a UserDeletedEvent: {err}") from err


class Deletions:
    """Applies deletion events: `erase` each user, then confirm to auth_svc."""

    def __init__(
        self,
        service: str,
        erase: Callable[[DeletedUser], Awaitable[None]],
        auth: auth_pb2_grpc.AuthServiceStub,
    ) -> None:
        if service not in PARTIES:
            raise ValueError(f"{service} is not a consumer of {topics.USERS_DELETED.name}: {PARTIES}")
        self.service = service
        self.erase = erase
        self.auth = auth

    async def apply(self, records: list[Any]) -> None:
        """One batch: an undecodable record is skipped (logged); any other failure fails the batch."""
        for record in records:
            try:
                user = decode(record.value)
            except InvalidArgument as err:
                log.error("skipping an undecodable %s record: %s", topics.USERS_DELETED.name, err)
                continue
            await self.erase(user)
            await self.confirm(user.user_id)
            log.info("user data erased", extra={"user_id": ids.encode(user.user_id), "service": self.service})

    async def confirm(self, user_id: uuid.UUID) -> None:
        """Tell auth_svc; retried (the batch fails) unless auth knows no such deletion, which no
        retry can change: that is logged and passed over, so it cannot hold up later deletions."""
        request = auth_pb2.ConfirmUserDeletionRequest(user_id=ids.encode(user_id), service=self.service)
        try:
            await self.auth.ConfirmUserDeletion(request)
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                log.error(
                    "auth_svc knows no deletion of this user; erased, not confirmed",
                    extra={"user_id": ids.encode(user_id), "service": self.service},
                )
                return
            raise Unavailable(f"auth_svc did not take the confirmation ({exc.code().name})") from exc


def consumer(
    service: str,
    bootstrap: str,
    erase: Callable[[DeletedUser], Awaitable[None]],
    auth_channel: aio.Channel,
) -> AsyncConsumer:
    """The service's consumer group of users.deleted.v1 (start it on the event loop)."""
    from meshkit.kafka import AsyncConsumer, ConsumerConfig

    deletions = Deletions(service, erase, auth_pb2_grpc.AuthServiceStub(auth_channel))
    config = ConsumerConfig(bootstrap, f"{service}-user-deletions", (topics.USERS_DELETED.name,))
    return AsyncConsumer(config, deletions.apply, retry_s=0.5, max_retry_s=30.0)
