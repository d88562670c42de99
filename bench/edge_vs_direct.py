"""Closed-loop load for "one route through Envoy vs the same RPC straight to its service" benchmarks.

Shared by bench.auth_me and bench.catalog_get_track: N clients each send the next request
as soon as the previous one answers, for a fixed time after a warm-up; the figures are req/s,
p50/p99, the client's own CPU and the CPU each named mesh process spent per request (on a
2-core machine the client and the mesh share the cores, so that is part of what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from meshctl import mesh
from meshctl.processes import ProcessTable


@dataclass
class Result:
    name: str
    concurrency: int
    latencies_s: list[float]
    elapsed_s: float
    errors: int
    client_cpu_s: float
    server_cpu_s: dict[str, float]  # CPU seconds each mesh process spent during the row

    def cpu_ms_per_request(self, name: str) -> float:
        return self.server_cpu_s.get(name, 0.0) / max(len(self.latencies_s), 1) * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def login(envoy_url: str, email: str = "demo@example.com", password: str = "demo-password") -> dict:
    """Sign in through Envoy from a loopback address of its own (logins are limited to 5 per 15
    minutes per IP, and every 127.x.y.z reaches Envoy); returns the login reply's body."""
    address = "127." + ".".join(str(1 + b % 254) for b in secrets.token_bytes(3))
    with httpx.Client(base_url=envoy_url, transport=httpx.HTTPTransport(local_address=address)) as http:
        reply = http.post("/api/auth/login", json={"email": email, "password": password})
        reply.raise_for_status()
        return dict(reply.json())


def mesh_processes(target: mesh.Mesh, names: tuple[str, ...]) -> dict[str, psutil.Process]:
    """The running processes of `names` in this mesh, for CPU accounting."""
    pids = ProcessTable(target.layout.run_dir)
    found = {}
    for name in names:
        started = pids.get(name)
        if started is not None and started.alive():
            found[name] = psutil.Process(started.pid)
    return found


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in processes.items():
        try:
            times = proc.cpu_times()
            out[name] = times.user + times.system
        except psutil.Error:
            out[name] = 0.0
    return out


async def closed_loop(
    name: str,
    concurrency: int,
    seconds: float,
    call: Callable[[], Awaitable[None]],
    processes: dict[str, psutil.Process],
) -> Result:
    """`concurrency` closed-loop clients for `seconds` (after a 1 s warm-up that is not counted)."""
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop = False

    async def worker() -> None:
        nonlocal errors
        while not stop:
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += measuring
                continue
            if measuring:
                latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(1.0)
    measuring = True
    cpu0, t0, server0 = time.process_time(), time.perf_counter(), cpu_seconds(processes)
    await asyncio.sleep(seconds)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server = {k: v - server0[k] for k, v in cpu_seconds(processes).items()}
    measuring = False
    stop = True
    await asyncio.gather(*tasks)
    return Result(name, concurrency, latencies, elapsed, errors, cpu, server)


def table(results: list[Result], services: tuple[str, ...]) -> str:
    """Rows in run order, then envoy/direct ratios per concurrency (rows come in envoy, direct pairs)."""
    cpu_heads = "".join(f" {s + ' cpu ms/req':>19}" for s in services)
    lines = [
        f"{'path':<24} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'client cpu':>10}"
        + cpu_heads
    ]
    for r in results:
        cpu = "".join(f" {r.cpu_ms_per_request(s):>19.2f}" for s in services)
        lines.append(
            f"{r.name:<24} {r.concurrency:>4} {r.rps:>8.0f} {r.pct(0.50):>8.2f} {r.pct(0.99):>8.2f} "
            f"{r.errors:>6} {r.client_cpu_s / r.elapsed_s:>10.0%}" + cpu
        )
    lines.append("")
    lines.append(f"{'ratio envoy/direct':<24} {'conc':>4} {'req/s':>8} {'p50':>8} {'p99':>8}")
    by_conc: dict[int, list[Result]] = {}
    for r in results:
        by_conc.setdefault(r.concurrency, []).append(r)
    for conc, (envoy, direct) in by_conc.items():
        lines.append(
            f"{'':<24} {conc:>4} {envoy.rps / direct.rps:>8.2f} {envoy.pct(0.5) / direct.pct(0.5):>8.2f} "
            f"{envoy.pct(0.99) / direct.pct(0.99):>8.2f}"
        )
    lines.append(f"\nmachine load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def arguments(prog: str, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--running", action="store_true", help="use the mesh `make up` started")
    parser.add_argument(
        "--run-dir", type=Path, default=mesh.Layout().run_dir, help="with --running: its run dir"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per row")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    return parser.parse_args()


def target_mesh(args: argparse.Namespace, stack: contextlib.ExitStack, prefix: str) -> mesh.Mesh:
    """The mesh `make up` started (--running) or a private one on free ports, stopped with `stack`."""
    if args.running:
        loaded = mesh.Mesh.load(args.run_dir)
        if loaded is None:
            raise SystemExit("no running mesh: `make up` first, or drop --running")
        return loaded
    print("starting a private mesh ...", flush=True)
    return stack.enter_context(mesh.private_mesh(prefix))
