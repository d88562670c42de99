"""The launcher's supervisor: keeps the mesh's services, media origin and Envoy running.

`make up` (and the test mesh) start one supervisor per run directory, recorded in the process
table like every other process (`supervisor`). It starts each program handed to it, records the
program's pid and start time in the same table (so `make down` still stops exact pids), and
restarts a program that exits, whatever ended it, after a backoff: 1 s, doubling up to 30 s, back
to 1 s once the program has run for a minute. Each exit and restart is a line in
`logs/supervisor.log`; counts and the last exit are in `supervisor-state.json` for `make status`.

Programs are handed over as files, `<run dir>/supervised/<name>.json` (argv, working directory,
the environment variables that differ from the supervisor's own), so the launcher can add one
later (Envoy, once the services answer) without a control socket. The supervisor never stops
its programs: SIGTERM ends the supervisor alone, and `make down` then stops every recorded pid,
so a stop never races a restart.

Why not supervisord: its children are known only through its XML-RPC (their pids are not in the
launcher's table, and they are orphaned without a record if it dies), a program that dies after
it counted as started comes back at once with no backoff, and one that keeps failing to start
is given up for good (FATAL).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshctl.processes import ProcessTable

log = logging.getLogger("meshctl.supervisor")

NAME = "supervisor"
SPEC_DIR = "supervised"
STATE_FILE = "supervisor-state.json"
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# A program that ran this long before it exited is restarted after the first backoff again.
STABLE_S = 60.0
POLL_S = 0.1


@dataclass(frozen=True)
class Program:
    """What to run: the command, its working directory and its environment over the supervisor's."""

    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)


@dataclass
class ProgramState:
    """What `make status` shows of one program."""

    pid: int = 0
    restarts: int = 0
    # "killed by SIGKILL", "exited with status 1"; empty until the first exit.
    last_exit: str = ""
    last_exit_at: float = 0.0
    # When a program in backoff starts again (0 while it runs).
    next_start_at: float = 0.0


def spec_dir(run_dir: Path) -> Path:
    return run_dir / SPEC_DIR


def supervise(run_dir: Path, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """Hand `name` to the run directory's supervisor (started with the launcher's environment)."""
    base = os.environ
    program = Program(
        name=name,
        argv=argv,
        cwd=str(cwd),
        env={key: value for key, value in env.items() if base.get(key) != value},
        unset=sorted(key for key in base if key not in env),
    )
    directory = spec_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".{name}.json.tmp"
    staging.write_text(json.dumps(asdict(program)))
    staging.replace(directory / f"{name}.json")


def release(run_dir: Path, name: str) -> None:
    """Take `name` back from the supervisor: it is no longer started again once it exits."""
    (spec_dir(run_dir) / f"{name}.json").unlink(missing_ok=True)


def ensure_running(procs: ProcessTable, run_dir: Path, cwd: Path) -> None:
    """Start the run directory's supervisor unless it runs already."""
    started = procs.get(NAME)
    if started is not None and started.alive():
        return
    argv = [sys.executable, "-m", "meshctl.supervisor", str(run_dir)]
    procs.spawn(NAME, argv, env=dict(os.environ), cwd=cwd)


def wait_started(procs: ProcessTable, run_dir: Path, names: list[str], timeout: float = 30.0) -> None:
    """Until the supervisor has started each of `names` (its pid recorded); fails with its log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        states = read_state(run_dir)
        pending = [n for n in names if n not in states or not _recorded(procs, n, states[n].pid)]
        if not pending:
            return
        supervisor = procs.get(NAME)
        if supervisor is None or not supervisor.alive() or time.monotonic() > deadline:
            tail = procs.log_path(NAME).read_text(errors="replace")[-3000:]
            missing = ", ".join(pending)
            raise RuntimeError(f"the supervisor did not start {missing}; its log ends with:\n{tail}")
        time.sleep(POLL_S)


def _recorded(procs: ProcessTable, name: str, pid: int) -> bool:
    started = procs.get(name)
    return pid != 0 and started is not None and started.pid == pid


def forget(run_dir: Path) -> None:
    """Drop the program files and state of a stopped supervisor (the next `up` starts afresh)."""
    for path in spec_dir(run_dir).glob("*.json"):
        path.unlink(missing_ok=True)
    (run_dir / STATE_FILE).unlink(missing_ok=True)


def read_state(run_dir: Path) -> dict[str, ProgramState]:
    """The supervisor's last word on each program (empty before it wrote any)."""
    path = run_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {name: ProgramState(**values) for name, values in raw.items()}


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def backoff_s(failures: int) -> float:
    """The wait before restart number `failures` of a run of quick exits (1 s, 2 s, 4 s ... 30 s)."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, failures - 1))


class Supervisor:
    """Starts the programs of one run directory and restarts whichever exits."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.procs = ProcessTable(run_dir)
        self.running: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
        self.states: dict[str, ProgramState] = {}
        self.failures: dict[str, int] = {}
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("supervising %s", spec_dir(self.run_dir))
        while not self.stopping:
            if self.step():
                self._write_state()
            time.sleep(POLL_S)
        log.info("supervisor stopping; its programs keep running (make down stops them)")

    def step(self) -> bool:
        """One pass: reap what exited, start what is due; True when something changed."""
        changed = False
        now = time.monotonic()
        wanted = self._programs()
        for name, (proc, started) in list(self.running.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.running[name]
            state = self.states[name]
            ran = now - started
            self.failures[name] = 1 if ran >= STABLE_S else self.failures.get(name, 0) + 1
            delay = backoff_s(self.failures[name])
            state.last_exit, state.last_exit_at = describe_exit(code), time.time()
            state.next_start_at = time.time() + delay
            log.warning(
                "%s (pid %d) %s after %.1f s; restarting in %.0f s",
                name,
                proc.pid,
                state.last_exit,
                ran,
                delay,
            )
            changed = True
        for name, program in wanted.items():
            if name in self.running:
                continue
            state = self.states.setdefault(name, ProgramState())
            if state.next_start_at > time.time():
                continue
            self._start(program, state)
            changed = True
        for name in set(self.states) - set(wanted) - set(self.running):
            del self.states[name]
            changed = True
        return changed

    def _start(self, program: Program, state: ProgramState) -> None:
        env = {k: v for k, v in os.environ.items() if k not in program.unset} | program.env
        try:
            proc = self.procs.launch(program.name, program.argv, env=env, cwd=Path(program.cwd))
        except OSError as exc:
            self.failures[program.name] = self.failures.get(program.name, 0) + 1
            delay = backoff_s(self.failures[program.name])
            state.last_exit, state.next_start_at = f"could not start: {exc}", time.time() + delay
            log.error("%s could not start (%s); trying again in %.0f s", program.name, exc, delay)
            return
        self.running[program.name] = (proc, time.monotonic())
        restarted = state.pid != 0
        if restarted:
            state.restarts += 1
        state.pid, state.next_start_at = proc.pid, 0.0
        if restarted:
            log.warning("%s restarted: pid %d (restart %d)", program.name, proc.pid, state.restarts)
        else:
            log.info("%s started: pid %d", program.name, proc.pid)

    def _programs(self) -> dict[str, Program]:
        programs = {}
        for path in sorted(spec_dir(self.run_dir).glob("*.json")):
            try:
                programs[path.stem] = Program(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                log.exception("ignoring the unreadable program file %s", path)
        return programs

    def _write_state(self) -> None:
        path = self.run_dir / STATE_FILE
        staging = path.with_name(f".{STATE_FILE}.tmp")
        staging.write_text(json.dumps({name: asdict(s) for name, s in self.states.items()}, indent=2))
        staging.replace(path)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl.supervisor", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    Supervisor(args.run_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
