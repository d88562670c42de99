"""Tombstones of erased users: a deleted user's late events must not bring their rows back.

A play reported just before an account's deletion can still be on its way through Kafka when a
service erases the user, and a consumer applying it afterwards would write the user's id again
(a redelivery, or a replay of the topic, would too). So each service whose consumers write
per-user rows keeps, in its own schema, an `erased_users` table of digests (SHA-256 of the id's
16 bytes: it matches an id one already holds and names nobody by itself), written in the erasing
transaction, and those consumers leave out whatever belongs to a digest there.

The erasure and a consumer's batch are separate transactions, and under READ COMMITTED a batch
that checked before the erasure committed could still write after the erasure deleted. So both
take a transaction-scoped advisory lock on the user's stripe (one of STRIPES, so a batch of any
size takes a bounded number of locks) before touching the tables batches write: batches shared,
the erasure exclusive. Whichever comes second sees the other's work: the erasure deletes what
the batch wrote, or the batch finds the tombstone. Shared locks never wait for each other, a
batch takes its stripes before any row, and an erasure holds one stripe and no row a batch
writes when it asks, so the locks cannot deadlock.

The statements are built here and run by each store on its own connection, sync or async.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, LargeBinary, Select, func, select, text
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import TextClause

STRIPES = 32
# The advisory locks' first key: this module's own space, apart from other advisory locks.
_LOCK_SPACE = zlib.crc32(b"meshkit.tombstones") & 0x7FFFFFFF

Transaction = AsyncSession | AsyncConnection


class ErasedUserColumns:
    """The columns of a service's `erased_users` table (mix into the service's ORM Base)."""

    __tablename__ = "erased_users"

    user_digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(server_default=func.now())


def digest(user_id: uuid.UUID) -> bytes:
    return hashlib.sha256(user_id.bytes).digest()


def stripe(user_id: uuid.UUID) -> int:
    return int.from_bytes(digest(user_id)[:4], "big") % STRIPES


def lock_for_erasure(user_id: uuid.UUID) -> TextClause:
    """The erasure's exclusive lock on the user's stripe: before it touches any table a batch
    writes (and as late as that allows: batches of any user in the stripe wait while it is held)."""
    return text("SELECT pg_advisory_xact_lock(:space, :stripe)").bindparams(
        space=_LOCK_SPACE, stripe=stripe(user_id)
    )


def lock_for_writes(user_ids: Iterable[uuid.UUID]) -> TextClause:
    """A batch's shared locks on its users' stripes: before the batch's first write."""
    stripes = sorted({stripe(u) for u in user_ids})
    return text(
        "SELECT count(pg_advisory_xact_lock_shared(:space, s)) "
        "FROM (SELECT unnest(CAST(:stripes AS integer[])) AS s) AS wanted"
    ).bindparams(space=_LOCK_SPACE, stripes=stripes)


def bury(model: type[ErasedUserColumns], user_id: uuid.UUID) -> Insert:
    """The tombstone's insert (a repeat changes nothing)."""
    return insert(model).values(user_digest=digest(user_id)).on_conflict_do_nothing()


def buried(model: type[ErasedUserColumns], user_ids: Iterable[uuid.UUID]) -> Select[bytes]:
    """The digests among `user_ids`' that have a tombstone."""
    return select(model.user_digest).where(model.user_digest.in_({digest(u) for u in user_ids}))


def erased_among(user_ids: Iterable[uuid.UUID], found: Iterable[bytes]) -> set[uuid.UUID]:
    """Which of `user_ids` the digests `found` (the rows of `buried`) belong to."""
    tombs = set(found)
    return {u for u in user_ids if digest(u) in tombs}


async def start_erasure(session: Transaction, model: type[ErasedUserColumns], user_id: uuid.UUID) -> None:
    """In the erasure's transaction, before it touches the tables batches write: lock the
    stripe, write the tombstone."""
    await session.execute(lock_for_erasure(user_id))
    await session.execute(bury(model, user_id))


async def erased(
    session: Transaction, model: type[ErasedUserColumns], user_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Begin a batch's writes in `session`'s transaction: lock its users' stripes, then name the
    erased ones (whose rows the batch must leave out)."""
    users = set(user_ids)
    if not users:
        return set()
    await session.execute(lock_for_writes(users))
    return erased_among(users, (await session.scalars(buried(model, users))).all())


def erased_sync(
    conn: Connection, model: type[ErasedUserColumns], user_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """`erased` on a synchronous connection (a consumer on kafka-python's own thread)."""
    users = set(user_ids)
    if not users:
        return set()
    conn.execute(lock_for_writes(users))
    return erased_among(users, conn.scalars(buried(model, users)).all())
