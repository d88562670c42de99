"""playback_svc's retention job through its real entry point, on the test database: only rows past the
topics' retention go, and nothing a relay or a consumer could still need."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from tests.meshkit.test_jobs import json_lines, run


def test_purge_outbox_drops_only_rows_published_before_the_retention(
    database_url: str, database_engine: sa.Engine
) -> None:
    topic = f"test.retention.{uuid.uuid4().hex[:8]}"
    rows = {
        "published long ago": "now() - interval '10 days'",
        "published yesterday": "now() - interval '1 day'",
        "never published": None,
    }
    with database_engine.begin() as conn:
        ids = {}
        for name, published in rows.items():
            ids[name] = conn.execute(
                sa.text(
                    "INSERT INTO playback.outbox (topic, key, payload, created_at, published_at)"
                    f" VALUES (:topic, NULL, :payload, now() - interval '30 days', {published or 'NULL'})"
                    " RETURNING id"
                ),
                {"topic": topic, "payload": name.encode()},
            ).scalar_one()
    try:
        done = run("playback_svc.jobs", "purge-outbox", env={"DATABASE_URL": database_url})
        assert done.returncode == 0, done.stdout + done.stderr
        finished = json_lines(done.stdout)[-1]
        assert finished["job"] == "purge-playback-outbox" and finished["result"]["outbox_rows_purged"] >= 1
        with database_engine.connect() as conn:
            left = set(
                conn.execute(
                    sa.text("SELECT id FROM playback.outbox WHERE topic = :t"), {"t": topic}
                ).scalars()
            )
        assert left == {ids["published yesterday"], ids["never published"]}
    finally:
        with database_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM playback.outbox WHERE topic = :t"), {"t": topic})


def test_a_retention_shorter_than_a_day_is_refused(database_url: str) -> None:
    done = run("playback_svc.jobs", "purge-outbox", "--days", "0", env={"DATABASE_URL": database_url})
    assert done.returncode == 2 and "--days must be at least 1" in done.stderr
