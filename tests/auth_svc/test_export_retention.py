"""auth_svc's data export retention job through its real entry point, on the test database: finished
exports older than the retention go, recent ones and those still being assembled stay."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from tests.meshkit.test_jobs import json_lines, run


def test_purge_exports_drops_only_exports_finished_before_the_retention(
    database_url: str, database_engine: sa.Engine
) -> None:
    user = uuid.uuid4()  # nobody's: these rows are this test's alone
    rows = {
        "done long ago": ("done", "now() - interval '10 days'"),
        "failed long ago": ("failed", "NULL"),
        "done yesterday": ("done", "now() - interval '1 day'"),
        "pending for long": ("pending", "NULL"),
    }
    with database_engine.begin() as conn:
        ids = {
            name: conn.execute(
                sa.text(
                    "INSERT INTO auth.data_exports (user_id, request_id, state, requested_at, completed_at)"
                    f" VALUES (:u, :k, :s, now() - interval '30 days', {completed}) RETURNING id"
                ),
                {"u": user, "k": name, "s": state},
            ).scalar_one()
            for name, (state, completed) in rows.items()
        }
    try:
        done = run("auth_svc.jobs", "purge-exports", env={"DATABASE_URL": database_url})
        assert done.returncode == 0, done.stdout + done.stderr
        finished = json_lines(done.stdout)[-1]
        assert finished["job"] == "purge-data-exports" and finished["result"]["exports_purged"] >= 2
        with database_engine.connect() as conn:
            left = set(
                conn.execute(
                    sa.text("SELECT id FROM auth.data_exports WHERE user_id = :u"), {"u": user}
                ).scalars()
            )
        assert left == {ids["done yesterday"], ids["pending for long"]}
    finally:
        with database_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM auth.data_exports WHERE user_id = :u"), {"u": user})


def test_a_retention_shorter_than_a_day_is_refused(database_url: str) -> None:
    done = run("auth_svc.jobs", "purge-exports", "--days", "0", env={"DATABASE_URL": database_url})
    assert done.returncode == 2 and "--days must be at least 1" in done.stderr
