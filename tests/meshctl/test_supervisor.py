"""The launcher's supervisor against real processes: restarts with backoff, logs and shows them,
and leaves exact-pid stopping to `make down`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl import mesh, supervisor
from meshctl.processes import ProcessTable, Started
from meshkit.config import PROJECT_ROOT
from tests.support import until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
def table(tmp_path: Path) -> Iterator[ProcessTable]:
    procs = ProcessTable(tmp_path)
    supervisor.ensure_running(procs, tmp_path, PROJECT_ROOT)
    yield procs
    mesh.stop_all(procs)


def _status(run_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "meshctl", "status", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    return done.stdout


def _replaced(table: ProcessTable, name: str, old: Started) -> Started | None:
    now = table.get(name)
    return now if now is not None and now.pid != old.pid and now.alive() else None


def test_a_killed_program_is_restarted_logged_and_shown_by_status(table: ProcessTable) -> None:
    run_dir = table.run_dir
    supervisor.supervise(run_dir, "sleeper", SLEEPER, env=dict(os.environ), cwd=run_dir)
    supervisor.wait_started(table, run_dir, ["sleeper"])
    first = table.get("sleeper")
    assert first is not None and first.alive()
    assert "sleeper" in _status(run_dir) and "restarted" not in _status(run_dir)

    os.kill(first.pid, signal.SIGKILL)
    second = until(lambda: _replaced(table, "sleeper", first), "the restart", within=20.0)
    state = supervisor.read_state(run_dir)["sleeper"]
    assert (state.pid, state.restarts, state.last_exit) == (second.pid, 1, "killed by SIGKILL")
    log = table.log_path(supervisor.NAME).read_text()
    assert f"sleeper (pid {first.pid}) killed by SIGKILL" in log
    assert f"sleeper restarted: pid {second.pid} (restart 1)" in log
    shown = _status(run_dir)
    line = next(line for line in shown.splitlines() if line.startswith("sleeper "))
    assert f"pid {second.pid}" in line and "running" in line
    assert "restarted 1x" in line and "last exit: killed by SIGKILL" in line


def test_quick_exits_back_off_doubling(table: ProcessTable) -> None:
    run_dir = table.run_dir
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor.supervise(run_dir, "failing", failing, env=dict(os.environ), cwd=run_dir)
    log = table.log_path(supervisor.NAME)
    until(lambda: "restarting in 4 s" in log.read_text(), "the third quick exit", within=30)
    waits = [
        line.rsplit("restarting in ", 1)[1]
        for line in log.read_text().splitlines()
        if "failing (pid" in line and "exited with status 3" in line
    ]
    assert waits[:3] == ["1 s", "2 s", "4 s"]
    assert [supervisor.backoff_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_down_stops_the_supervisor_first_and_every_recorded_pid(table: ProcessTable) -> None:
    run_dir = table.run_dir
    for name in ("one", "two"):
        supervisor.supervise(run_dir, name, SLEEPER, env=dict(os.environ), cwd=run_dir)
    supervisor.wait_started(table, run_dir, ["one", "two"])
    started = [table.get(name) for name in (supervisor.NAME, "one", "two")]
    assert all(s is not None and s.alive() for s in started)

    assert set(mesh.stop_all(table)) == {supervisor.NAME, "one", "two"}
    assert [s.name for s in started if s is not None and s.alive()] == []
    # The supervisor is among the dead: nothing is left that could restart the others.
    assert table.all() == []


def test_a_dead_supervisor_leaves_its_programs_recorded_for_down(table: ProcessTable) -> None:
    run_dir = table.run_dir
    supervisor.supervise(run_dir, "orphan", SLEEPER, env=dict(os.environ), cwd=run_dir)
    supervisor.wait_started(table, run_dir, ["orphan"])
    boss, orphan = table.get(supervisor.NAME), table.get("orphan")
    assert boss is not None and orphan is not None
    os.kill(boss.pid, signal.SIGKILL)
    until(lambda: not boss.alive(), "the supervisor to die", within=20.0)
    assert orphan.alive() and table.get("orphan") == orphan
    assert "orphan" in mesh.stop_all(table)
    assert not orphan.alive()


def test_a_program_gets_the_environment_it_was_handed(table: ProcessTable, tmp_path: Path) -> None:
    run_dir = table.run_dir
    out = tmp_path / "env.txt"
    env = {k: v for k, v in os.environ.items() if k != "HOME"} | {"MESH_TEST_VALUE": "handed over"}
    script = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(out)!r}).write_text("
        "os.environ['MESH_TEST_VALUE'] + '|' + str('HOME' in os.environ)); "
        "time.sleep(600)"
    )
    supervisor.supervise(run_dir, "env", [sys.executable, "-c", script], env=env, cwd=run_dir)
    assert until(lambda: out.exists() and out.read_text(), "the program's output") == "handed over|False"
