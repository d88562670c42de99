"""rec_svc's retention job through its real entry point, on the test database: only the ids of
events older than the topics' retention go (no broker can deliver those again)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from tests.meshkit.test_jobs import json_lines, run


def test_purge_applied_drops_only_ids_older_than_the_retention(
    database_url: str, database_engine: sa.Engine
) -> None:
    old, recent = f"old-{uuid.uuid4().hex}", f"recent-{uuid.uuid4().hex}"
    with database_engine.begin() as conn:
        for event_id, age in ((old, "10 days"), (recent, "1 day")):
            conn.execute(
                sa.text(
                    "INSERT INTO rec.events_applied (event_id, topic, applied_at)"
                    f" VALUES (:id, 'test.retention', now() - interval '{age}')"
                ),
                {"id": event_id},
            )
    try:
        done = run("rec_svc.batch", "purge-applied", env={"DATABASE_URL": database_url})
        assert done.returncode == 0, done.stdout + done.stderr
        finished = json_lines(done.stdout)[-1]
        assert finished["job"] == "purge-rec-events" and finished["result"]["applied_event_ids_purged"] >= 1
        with database_engine.connect() as conn:
            left = set(
                conn.execute(
                    sa.text("SELECT event_id FROM rec.events_applied WHERE event_id IN (:a, :b)"),
                    {"a": old, "b": recent},
                ).scalars()
            )
        assert left == {recent}
    finally:
        with database_engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM rec.events_applied WHERE event_id IN (:a, :b)"), {"a": old, "b": recent}
            )
