"""A deleted user's late events against their erasure, on the real PostgreSQL, with rec's store as
the writer (meshkit.tombstones): whichever transaction comes second sees the other's work, so no
row of the user survives in either order. Each test's user and track are fresh ids whose rows it
deletes afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa

from meshkit import db, tombstones
from rec_svc.models import ErasedUser, Listen
from rec_svc.store import RecStore, StoredMix

# Long enough for an unguarded transaction to have finished; a guarded one never finishes in it.
BLOCKED_FOR_S = 1.0


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[RecStore]:
    engine = db.create_engine(database_url, pool_size=2)
    yield RecStore(db.session_factory(engine))
    await engine.dispose()


# A made-up track: add_listens records it in rec.tracks, and the tests delete it afterwards.
TRACK = uuid.uuid4()


@pytest.fixture
def user(database_engine: sa.Engine) -> Iterator[uuid.UUID]:
    user_id = uuid.uuid4()
    try:
        yield user_id
    finally:
        with database_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rec.listens WHERE track_id = :t"), {"t": TRACK})
            conn.execute(sa.text("DELETE FROM rec.tracks WHERE track_id = :t"), {"t": TRACK})
            conn.execute(
                sa.text("DELETE FROM rec.erased_users WHERE user_digest = :d"),
                {"d": tombstones.digest(user_id)},
            )


def listen(user: uuid.UUID) -> dict[str, object]:
    return {
        "stream_id": f"late-{uuid.uuid4().hex}",
        "user_id": user,
        "track_id": TRACK,
        "artist_ids": [],
        "counted_at": dt.datetime.now(dt.UTC),
        "played_ms": 31_000,
        "weight": 1.0,
    }


def listens_of(engine: sa.Engine, user: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM rec.listens WHERE user_id = :u"), {"u": user}
            ).scalar_one()
        )


async def test_an_erasure_waits_for_a_batch_that_checked_before_it_and_erases_its_rows(
    store: RecStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    async with store.sessions() as batch, batch.begin():
        assert await tombstones.erased(batch, ErasedUser, {user}) == set()
        await batch.execute(sa.insert(Listen).values(**listen(user)))
        erasure = asyncio.create_task(store.erase_user(user))
        done, _ = await asyncio.wait({erasure}, timeout=BLOCKED_FOR_S)
        assert not done, "the erasure went ahead while a batch of the user's was open"
    await erasure  # the batch committed: now the erasure runs, and sees its row
    assert listens_of(database_engine, user) == 0


async def test_a_batch_waits_for_an_erasure_under_way_and_then_writes_nothing(
    store: RecStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    async with store.sessions() as erasure, erasure.begin():
        await tombstones.start_erasure(erasure, ErasedUser, user)
        batch = asyncio.create_task(store.add_listens([listen(user)]))
        done, _ = await asyncio.wait({batch}, timeout=BLOCKED_FOR_S)
        assert not done, "a batch wrote while the user's erasure was under way"
    assert await batch == 0
    assert listens_of(database_engine, user) == 0
    assert await store.add_listens([listen(uuid.uuid4())]) == 1  # another user's still goes in


async def test_a_build_that_read_the_history_before_the_erasure_stores_no_mix_for_the_user(
    store: RecStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    other = uuid.uuid4()
    mixes = [StoredMix(someone, [TRACK], dt.datetime.now(dt.UTC), "test-build") for someone in (user, other)]
    await store.erase_user(user)  # between the build's reading and its writing
    try:
        await store.save_discover_weekly(mixes)
        with database_engine.connect() as conn:
            stored = set(
                conn.execute(
                    sa.text("SELECT user_id FROM rec.discover_weekly WHERE user_id IN (:u, :o)"),
                    {"u": user, "o": other},
                ).scalars()
            )
        assert stored == {other}
    finally:
        with database_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rec.discover_weekly WHERE user_id = :o"), {"o": other})
