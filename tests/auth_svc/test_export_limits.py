"""How many data exports a user may start, against the real PostgreSQL: one in progress at a time,
MAX_PER_DAY a day, retries of a request id always answered, two requests at once never both let
through. Each test's user is a fresh id whose rows it deletes afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa

from auth_svc import exports, rules
from auth_svc.export_store import ExportRow, ExportStore
from auth_svc.store import AuditEntry
from meshkit import db, ids
from meshkit.errors import FailedPrecondition


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ExportStore]:
    engine = db.create_engine(database_url, pool_size=4)
    yield ExportStore(db.session_factory(engine))
    await engine.dispose()


@pytest.fixture
def user(database_engine: sa.Engine) -> Iterator[uuid.UUID]:
    user_id = uuid.uuid4()
    try:
        yield user_id
    finally:
        with database_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM auth.data_exports WHERE user_id = :u"), {"u": user_id})
            conn.execute(sa.text("DELETE FROM auth.audit_logs WHERE actor_id = :u"), {"u": user_id})


async def ask(store: ExportStore, user: uuid.UUID, key: str) -> ExportRow:
    entry = AuditEntry.on_user(rules.DATA_EXPORT_REQUESTED, user, "198.51.100.7")
    return await store.create(user, key, entry, exports.may_start)


def exports_of(engine: sa.Engine, user: uuid.UUID) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT request_id, state FROM auth.data_exports WHERE user_id = :u ORDER BY 1"),
            {"u": user},
        )
        return [(str(key), str(state)) for key, state in found]


def finish(engine: sa.Engine, user: uuid.UUID, requested: str = "now()") -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE auth.data_exports SET state = 'done', completed_at = now(), "
                f"requested_at = {requested} WHERE user_id = :u AND state = 'pending'"
            ),
            {"u": user},
        )


async def test_one_export_in_progress_at_a_time_while_its_retries_are_answered(
    store: ExportStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    first = await ask(store, user, "first")
    with pytest.raises(FailedPrecondition, match=f"data export {ids.encode(first.id)} is still being"):
        await ask(store, user, "second")
    assert (await ask(store, user, "first")).id == first.id  # a retry is not a new export
    assert exports_of(database_engine, user) == [("first", "pending")]

    finish(database_engine, user)
    second = await ask(store, user, "second")
    assert second.id != first.id and second.state == "pending"


async def test_a_day_allows_max_per_day_new_exports_and_the_oldest_leaving_reopens_it(
    store: ExportStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    # The oldest of the day was asked for 23 hours ago: the window reopens in about an hour.
    for n in range(exports.MAX_PER_DAY):
        await ask(store, user, f"day-{n}")
        finish(database_engine, user, "now() - interval '23 hours'" if n == 0 else "now()")
    with pytest.raises(FailedPrecondition, match=f"{exports.MAX_PER_DAY} data exports were asked for"):
        await ask(store, user, "one too many")
    assert len(exports_of(database_engine, user)) == exports.MAX_PER_DAY
    assert (await ask(store, user, "day-1")).request_id == "day-1"  # retries still answer

    with database_engine.begin() as conn:  # the oldest leaves the 24 hours
        conn.execute(
            sa.text(
                "UPDATE auth.data_exports SET requested_at = now() - interval '25 hours' "
                "WHERE user_id = :u AND request_id = 'day-0'"
            ),
            {"u": user},
        )
    assert (await ask(store, user, "next day")).state == "pending"


async def test_two_new_requests_at_once_start_one_export(
    store: ExportStore, user: uuid.UUID, database_engine: sa.Engine
) -> None:
    outcomes = await asyncio.gather(
        *(ask(store, user, f"racing-{n}") for n in range(4)), return_exceptions=True
    )
    started = [o for o in outcomes if isinstance(o, ExportRow)]
    refused = [o for o in outcomes if isinstance(o, FailedPrecondition)]
    assert (len(started), len(refused)) == (1, 3), outcomes
    assert exports_of(database_engine, user) == [(started[0].request_id, "pending")]
