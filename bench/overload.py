"""Overload through Envoy: shed at once, not queued, and recovered as soon as the load drops.

One read route (`GET /v1/tracks/{id}`: ext_authz, then catalog) at three loads, in this order:
capacity (32 closed-loop clients, the concurrency the edge benchmarks measure at), four times that
(128 clients), and capacity again right after (recovery). Each client sends its next request as
soon as an answer comes; a client answered 503 waits `--backoff-ms` first (a real client is told
`retry-after: 1`; the pause is shorter here to keep the offered load high).

The same three phases run twice on one mesh: with Envoy's circuit breakers as rendered (at most
`max_requests_per_replica` requests in flight to each service replica, ext_authz calls included;
beyond, 503 at once) and with them off (Envoy's default of 1024: every request queues), Envoy
restarted on the other config in between, so the limit's effect is measured in the same run.
Printed per phase: admitted req/s, admitted p50/p99, 503s and their p99 (how fast a refusal is),
other errors; then the goals as ratios: admitted p99 at 4x over p99 at capacity (goal <= 3), and
recovery p99 over capacity p99.

Production observability is on (metrics, JSON logs at INFO, tracing at 0.01 to a receiver that
drops everything); the rate limits are raised as in bench.edge_cost.

    .venv/bin/python -m bench.overload [--seconds 8] [--backoff-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from dataclasses import dataclass, field

import aiohttp

from bench.edge_cost import production_mesh
from bench.edge_vs_direct import login
from devdata import demo
from meshctl import datatier, envoy_config, mesh
from meshctl.processes import ProcessTable

CAPACITY_CLIENTS = 32
PATH = f"/v1/tracks/{demo.DEMO_TRACK_ID}"


@dataclass
class Phase:
    name: str
    clients: int
    elapsed_s: float = 0.0
    ok_s: list[float] = field(default_factory=list)
    refused_s: list[float] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> str:
        other = ", ".join(f"{k} x{v}" for k, v in sorted(self.other.items())) or "-"
        return (
            f"{self.name:22} {self.clients:>7} {len(self.ok_s) / self.elapsed_s:>8.0f} "
            f"{self.pct(self.ok_s, 0.5):>8.1f} {self.pct(self.ok_s, 0.99):>8.1f} "
            f"{len(self.refused_s) / self.elapsed_s:>8.0f} {self.pct(self.refused_s, 0.99):>9.1f}  {other}"
        )


async def run_phase(
    http: aiohttp.ClientSession, name: str, clients: int, seconds: float, backoff_s: float
) -> Phase:
    """`clients` closed-loop clients for `seconds`, after a 1 s warm-up that is not counted."""
    phase = Phase(name, clients)
    measuring = False
    stop = False

    async def client() -> None:
        while not stop:
            started = time.perf_counter()
            try:
                async with http.get(PATH) as reply:
                    await reply.read()
                    status = reply.status
            except aiohttp.ClientError as exc:
                status, kind = -1, type(exc).__name__
            took = time.perf_counter() - started
            if measuring:
                if status == 200:
                    phase.ok_s.append(took)
                elif status == 503:
                    phase.refused_s.append(took)
                else:
                    key = str(status) if status > 0 else kind
                    phase.other[key] = phase.other.get(key, 0) + 1
            if status != 200:
                await asyncio.sleep(backoff_s)

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(1.0)
    measuring, started = True, time.perf_counter()
    await asyncio.sleep(seconds)
    phase.elapsed_s = time.perf_counter() - started
    measuring, stop = False, True
    await asyncio.gather(*tasks)
    return phase


async def phases(target: mesh.Mesh, seconds: float, backoff_s: float) -> list[Phase]:
    token = login(target.envoy_url)["access_token"]
    connector = aiohttp.TCPConnector(limit=4 * CAPACITY_CLIENTS)
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=target.envoy_url, connector=connector, headers=headers) as http:
        async with http.get(PATH) as reply:  # first-call work (connections, caches) out of the way
            reply.raise_for_status()
        return [
            await run_phase(http, "capacity", CAPACITY_CLIENTS, seconds, backoff_s),
            await run_phase(http, "4x capacity", 4 * CAPACITY_CLIENTS, seconds, backoff_s),
            await run_phase(http, "capacity again", CAPACITY_CLIENTS, seconds, backoff_s),
        ]


def report(results: dict[str, list[Phase]]) -> str:
    heads = f"{'clients':>7} {'ok/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'503/s':>8} {'503 p99':>9}"
    lines = [f"{'phase':22} {heads}  other"]
    for name, rows in results.items():
        lines.append(f"-- {name}")
        lines.extend(row.row() for row in rows)
    lines.append("")
    for name, (capacity, over, again) in results.items():
        base = Phase.pct(capacity.ok_s, 0.99)
        at_4x = Phase.pct(over.ok_s, 0.99) / base
        lines.append(
            f"{name}: admitted p99 at 4x / at capacity {at_4x:.2f} (goal <= 3.00); "
            f"recovered p99 / capacity p99 {Phase.pct(again.ok_s, 0.99) / base:.2f}; "
            f"share refused at 4x {len(over.refused_s) / max(len(over.refused_s) + len(over.ok_s), 1):.0%}"
        )
    lines.append(f"machine load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def reconfigure_envoy(target: mesh.Mesh, overrides: dict[str, int]) -> None:
    """Envoy on the local config with `overrides`, restarted by the mesh's supervisor."""
    envoy_config.write(
        "local", target.layout.run_dir / "envoy.yaml", overrides={**mesh.envoy_overrides(target), **overrides}
    )
    procs = ProcessTable(target.layout.run_dir)
    old = procs.get("envoy")
    assert old is not None and old.alive()
    os.kill(old.pid, signal.SIGKILL)

    def replaced() -> bool:
        now = procs.get("envoy")
        return now is not None and now.pid != old.pid and now.alive()

    datatier.wait_until(replaced, "the supervisor to restart Envoy", timeout=60)
    # Ready, and its health checks see every service again, before the load starts.
    datatier.wait_until(lambda: mesh.envoy_sees_all_healthy(target), "Envoy to see every service", timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--backoff-ms", type=float, default=100.0, help="a refused client's pause")
    args = parser.parse_args()
    results: dict[str, list[Phase]] = {}
    with production_mesh("bench-overload-") as target:
        limit = envoy_config.DEFAULTS["max_requests_per_replica"]
        name = f"circuit breakers ({limit} per replica)"
        print(f"{name} ...", flush=True)
        results[name] = asyncio.run(phases(target, args.seconds, args.backoff_ms / 1000))
        reconfigure_envoy(target, {"max_requests_per_replica": 0})
        print("no circuit breakers ...", flush=True)
        results["no circuit breakers"] = asyncio.run(phases(target, args.seconds, args.backoff_ms / 1000))
    print(report(results))


if __name__ == "__main__":
    main()
