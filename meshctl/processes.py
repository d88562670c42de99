"""Background processes that the launcher starts and stops by pid (never by name)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Started:
    """A process we started: its pid plus its start time, so a recycled pid is never signalled."""

    name: str
    pid: int
    create_time: float

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


class ProcessTable:
    """Pid files under `<run_dir>/pids`, one per process, and logs under `<run_dir>/logs`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Started:
        """Start `argv` in its own session (so our exit does not stop it), logging to <name>.log."""
        return self.adopt(name, self._popen(name, argv, env, cwd).pid)

    def launch(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        """`spawn`, returning the child itself, for a parent that waits for it (the supervisor)."""
        proc = self._popen(name, argv, env, cwd)
        self.adopt(name, proc.pid)
        return proc

    def _popen(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        with self.log_path(name).open("ab") as log:
            return subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def adopt(self, name: str, pid: int) -> Started:
        """Record a process started some other way (e.g. a daemonising PostgreSQL)."""
        started = Started(name, pid, psutil.Process(pid).create_time())
        # Written aside and renamed: `make status`, the supervisor and tests read it at any moment.
        staging = self.pid_dir / f".{name}.json.tmp"
        staging.write_text(json.dumps(started.__dict__))
        staging.replace(self.pid_dir / f"{name}.json")
        return started

    def get(self, name: str) -> Started | None:
        path = self.pid_dir / f"{name}.json"
        if not path.exists():
            return None
        return Started(**json.loads(path.read_text()))

    def all(self) -> list[Started]:
        return [Started(**json.loads(p.read_text())) for p in sorted(self.pid_dir.glob("*.json"))]

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
        """Signal the process, wait for it, SIGKILL after `timeout`; True when something was running."""
        started = self.get(name)
        if started is None:
            return False
        was_alive = started.alive()
        if was_alive:
            os.kill(started.pid, sig)
            deadline = time.monotonic() + timeout
            while started.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if started.alive():
                os.kill(started.pid, signal.SIGKILL)
        (self.pid_dir / f"{started.name}.json").unlink(missing_ok=True)
        return was_alive
