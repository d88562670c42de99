"""GET /v1/me through Envoy (ext_authz + rate-limit filter + transcoder) vs GetMe straight to auth_svc.

    .venv/bin/python bench/auth_me.py                  # starts a private mesh (own ports and database)
    .venv/bin/python bench/auth_me.py --running        # uses the mesh `make up` started
    .venv/bin/python bench/auth_me.py --seconds 10 --concurrency 1 32

Through Envoy every request is one ext_authz Check (a Redis round trip in auth_svc) plus the
transcoded GetMe (one PostgreSQL query); direct, it is GetMe alone with the identity metadata an
internal caller sends. /v1/me is in no rate-limit category, so the ratelimit filter passes it
without calling out. The client shares the machine's cores with Envoy, auth_svc, Redis and
PostgreSQL: its own CPU use is printed, since on 2 cores it is part of what is measured.
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

import aiohttp
import httpx
import psutil
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from meshctl import demo, mesh
from meshctl.processes import ProcessTable
from meshkit.config import DEFAULT_PORTS

EMAIL, PASSWORD = "demo@example.com", "demo-password"


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


def _cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in processes.items():
        try:
            times = proc.cpu_times()
            out[name] = times.user + times.system
        except psutil.Error:
            out[name] = 0.0
    return out


async def _run(
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
    cpu0, t0, server0 = time.process_time(), time.perf_counter(), _cpu_seconds(processes)
    await asyncio.sleep(seconds)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server = {k: v - server0[k] for k, v in _cpu_seconds(processes).items()}
    measuring = False
    stop = True
    await asyncio.gather(*tasks)
    return Result(name, concurrency, latencies, elapsed, errors, cpu, server)


async def bench(
    target: mesh.Mesh, auth_addr: str, token: str, user_id: str, args: argparse.Namespace
) -> list[Result]:
    envoy_url = target.envoy_url
    pids = ProcessTable(target.layout.run_dir)
    processes = {}
    for name in ("envoy", "auth_svc"):
        started = pids.get(name)
        if started is not None and started.alive():
            processes[name] = psutil.Process(started.pid)
    results = []
    headers = {"authorization": f"Bearer {token}"}
    metadata = (("x-user-id", user_id), ("x-user-roles", "premium,user"), ("x-user-product", "premium"))
    for concurrency in args.concurrency:
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        async with aiohttp.ClientSession(base_url=envoy_url, connector=connector, headers=headers) as http:

            async def via_envoy(http: aiohttp.ClientSession = http) -> None:
                async with http.get("/v1/me") as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(reply.status)

            results.append(await _run("envoy JSON /v1/me", concurrency, args.seconds, via_envoy, processes))

        async with aio.insecure_channel(auth_addr) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)

            async def direct(stub: auth_pb2_grpc.AuthServiceStub = stub) -> None:
                await stub.GetMe(auth_pb2.GetMeRequest(), metadata=metadata, timeout=10)

            results.append(await _run("direct gRPC GetMe", concurrency, args.seconds, direct, processes))
    return results


def login(envoy_url: str) -> tuple[str, str]:
    """A session for the demo user, from an address of its own (logins are 5 per 15 min per IP)."""
    address = "127." + ".".join(str(1 + b % 254) for b in secrets.token_bytes(3))
    with httpx.Client(base_url=envoy_url, transport=httpx.HTTPTransport(local_address=address)) as http:
        reply = http.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
        reply.raise_for_status()
        body = reply.json()
        return body["access_token"], body["user"]["id"]


def table(results: list[Result]) -> str:
    lines = [
        f"{'path':<20} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'client cpu':>10}"
        f" {'auth_svc cpu ms/req':>19} {'envoy cpu ms/req':>16}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<20} {r.concurrency:>4} {r.rps:>8.0f} {r.pct(0.50):>8.2f} {r.pct(0.99):>8.2f} "
            f"{r.errors:>6} {r.client_cpu_s / r.elapsed_s:>10.0%}"
            f" {r.cpu_ms_per_request('auth_svc'):>19.2f} {r.cpu_ms_per_request('envoy'):>16.2f}"
        )
    lines.append("")
    lines.append(f"{'ratio envoy/direct':<20} {'conc':>4} {'req/s':>8} {'p50':>8} {'p99':>8}")
    by_conc: dict[int, list[Result]] = {}
    for r in results:
        by_conc.setdefault(r.concurrency, []).append(r)
    for conc, (envoy, direct) in by_conc.items():
        lines.append(
            f"{'':<20} {conc:>4} {envoy.rps / direct.rps:>8.2f} {envoy.pct(0.5) / direct.pct(0.5):>8.2f} "
            f"{envoy.pct(0.99) / direct.pct(0.99):>8.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--running", action="store_true", help="use the mesh `make up` started")
    parser.add_argument(
        "--run-dir", type=Path, default=mesh.Layout().run_dir, help="with --running: its run dir"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per row")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if args.running:
            loaded = mesh.Mesh.load(args.run_dir)
            if loaded is None:
                raise SystemExit("no running mesh: `make up` first, or drop --running")
            target = loaded
        else:
            print("starting a private mesh ...", flush=True)
            target = stack.enter_context(mesh.private_mesh("bench-auth-"))
        auth_addr = f"127.0.0.1:{target.layout.ports.get('auth_svc', DEFAULT_PORTS['auth_svc'])}"
        token, user_id = login(target.envoy_url)
        assert user_id == demo.DEMO_USER_ID
        results = asyncio.run(bench(target, auth_addr, token, user_id, args))
    print(table(results))
    p99 = {r.concurrency: r.pct(0.99) for r in results if r.name.startswith("envoy")}
    direct_p99 = {r.concurrency: r.pct(0.99) for r in results if r.name.startswith("direct")}
    best = max(r.rps for r in results if r.name.startswith("envoy"))
    print(f"\nmachine load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"goal: >= 1500 req/s through Envoy (best here {best:.0f}); p99 <= 3x direct "
        + ", ".join(f"(c={c}: {p99[c] / direct_p99[c]:.2f}x)" for c in p99)
    )


if __name__ == "__main__":
    main()
