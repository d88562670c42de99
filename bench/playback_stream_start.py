"""Stream start as a client sees it: ``GET /api/playback/stream`` through Envoy (ext_authz with a
bearer token, rate-limit check, JSON transcoding, playback_svc signing) plus the first 64 KiB of
the audio from the media origin (``/media/...`` through Envoy, HMAC verified, byte range), as
p50/p95/p99 at 1 and 32 concurrent clients.

Runs its own mesh (fresh database, tansu, every service, Envoy) so nothing else shares it, with
the demo catalog and the demo track's audio ingested through catalog_svc's real pipeline (20 s of
synthesized audio at 96/160/320 kbps). One deliberate departure from ``make up``, printed: the
per-user GetStreamUrl rate limit (300 per minute) is raised, since one signed-in user drives
every client here.

    .venv/bin/python -m bench.playback_stream_start [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx

from auth_svc.settings import AuthSettings
from bench.playback_common import percentiles
from devdata import demo
from meshctl import datatier, mesh
from meshctl.processes import ProcessTable

FIRST_BYTES = 65_536


def raised_limits(run_dir: Path) -> Path:
    """auth_svc's rate-limit file (AUTH_RATELIMIT_CONFIG, else its own) with the GetStreamUrl limit
    raised for one bench user; the mesh's auth_svc is pointed at the copy through the same setting."""
    source = AuthSettings().ratelimit_config
    text = source.read_text()
    text, changed = re.subn(r"(\[categories\.playback\][^\[]*?limit = )\d+", r"\g<1>100000000", text)
    if not changed:
        raise SystemExit(f"could not find [categories.playback] limit in {source}")
    path = run_dir / "ratelimits-bench.toml"
    path.write_text(text)
    return path


def start_mesh(stack: ExitStack) -> tuple[mesh.Mesh, ProcessTable]:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-stream-start-"))
    procs = ProcessTable(run_dir)
    database = f"bench_stream_{uuid.uuid4().hex[:8]}"

    def stop_all() -> None:
        for started in reversed(procs.all()):
            if started.name == "postgres":
                datatier.stop_postgres(procs)
            else:
                procs.stop(started.name)

    stack.callback(stop_all)
    layout = dataclasses.replace(mesh.free_layout(run_dir, database), redis_db=15)
    os.environ["AUTH_RATELIMIT_CONFIG"] = str(raised_limits(run_dir))
    os.environ["AUTH_RATELIMIT_KEY_PREFIX"] = f"ratelimit-bench-{uuid.uuid4().hex[:8]}"
    running = mesh.start_data_tier(layout, procs)
    stack.callback(
        lambda: datatier.drop_database(datatier.with_database(running.database_url, "postgres"), database)
    )
    mesh.prepare(running)
    demo.load_if_empty(running.database_url)
    demo.load_audio(
        running.database_url,
        layout.storage_root,
        count=1,
        workers=1,
        seconds=20.0,
        public_base_url=running.envoy_url,
    )
    mesh.start_services(running, procs)
    mesh.wait_healthy(running, procs)
    mesh.start_envoy(running, procs)
    return running, procs


def login(base: str) -> str:
    reply = httpx.post(
        f"{base}/api/auth/login", json={"email": "demo@example.com", "password": "demo-password"}, timeout=10
    )
    reply.raise_for_status()
    return reply.json()["access_token"]


async def stream_start(session: aiohttp.ClientSession, base: str, token: str) -> tuple[float, float]:
    """One stream start; returns (url seconds, total seconds)."""
    started = time.perf_counter()
    async with session.get(
        f"{base}/api/playback/stream",
        params={"track_id": demo.DEMO_TRACK_ID, "quality": "high", "connection": "wifi"},
        headers={"authorization": f"Bearer {token}"},
    ) as reply:
        if reply.status != 200:
            raise RuntimeError(f"GetStreamUrl answered {reply.status}: {await reply.text()}")
        url = (await reply.json())["url"]
    got_url = time.perf_counter()
    async with session.get(url, headers={"Range": f"bytes=0-{FIRST_BYTES - 1}"}) as media:
        body = await media.read()
        if media.status != 206 or len(body) != FIRST_BYTES or not body.startswith(b"OggS"):
            raise RuntimeError(f"media answered {media.status} with {len(body)} bytes")
    done = time.perf_counter()
    return got_url - started, done - started


def cpu_times(procs: ProcessTable) -> dict[str, float]:
    """CPU seconds used so far by each process of the mesh."""
    import psutil

    used = {}
    for started in procs.all():
        try:
            times = psutil.Process(started.pid).cpu_times()
        except psutil.Error:
            continue
        used[started.name] = times.user + times.system
    return used


async def run_level(base: str, token: str, clients: int, requests: int, procs: ProcessTable) -> None:
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(min(50, requests)):  # warm-up: connections, caches
            await stream_start(session, base, token)
        url_times: list[float] = []
        totals: list[float] = []
        remaining = requests

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                url_s, total_s = await stream_start(session, base, token)
                url_times.append(url_s)
                totals.append(total_s)

        started, cpu, mesh_cpu = time.perf_counter(), time.process_time(), cpu_times(procs)
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        client_cpu = (time.process_time() - cpu) / elapsed
        after = cpu_times(procs)
        busy = {name: (after[name] - mesh_cpu.get(name, 0.0)) / elapsed for name in after}
    total, url = percentiles(totals), percentiles(url_times)
    print(
        f"{clients:>3} client(s): {len(totals):>5} starts, {len(totals) / elapsed:7.0f}/s | "
        f"stream start p50 {total['p50']:6.2f} p95 {total['p95']:6.2f} p99 {total['p99']:6.2f} ms | "
        f"GetStreamUrl alone p50 {url['p50']:6.2f} p95 {url['p95']:6.2f} p99 {url['p99']:6.2f} ms | "
        f"bench client CPU {client_cpu:.0%} of a core"
    )
    top = sorted(busy.items(), key=lambda item: -item[1])[:5]
    print("      CPU by process (share of one core): " + ", ".join(f"{n} {v:.0%}" for n, v in top))


def server_side(running: mesh.Mesh) -> str:
    """Mean server-side times over the whole run, from the services' own Prometheus metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    def sums(service: str, metric: str, route: tuple[str, str] | None) -> tuple[float, float]:
        port = running.layout.metrics_ports[service]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        total = count = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if route is not None and sample.labels.get(route[0]) != route[1]:
                    continue
                if sample.name == f"{metric}_sum":
                    total += sample.value
                elif sample.name == f"{metric}_count":
                    count += sample.value
        return total, count

    parts = []
    check = "/envoy.service.auth.v3.Authorization/Check"
    for label, service, metric, route in (
        ("playback GetStreamUrl handler", "playback_svc", "stream_start_seconds", None),
        (
            "playback GetStreamUrl RPC",
            "playback_svc",
            "http_request_duration_seconds",
            ("route", "/api/playback/stream"),
        ),
        ("auth ext_authz Check", "auth_svc", "control_call_duration_seconds", ("rpc", check)),
    ):
        total, count = sums(service, metric, route)
        if count:
            parts.append(f"{label} {1000 * total / count:.2f} ms ({int(count)} calls)")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.playback_stream_start", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=2000, help="stream starts per concurrency level")
    args = parser.parse_args()
    with ExitStack() as stack:
        running, procs = start_mesh(stack)
        base = running.envoy_url
        token = login(base)
        probe = httpx.get(
            f"{base}/api/playback/stream",
            params={"track_id": demo.DEMO_TRACK_ID},
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        if probe.status_code != 200:
            raise SystemExit(f"GetStreamUrl answered {probe.status_code}: {probe.text[:200]}")
        print("audio from the mesh's own catalog_svc; GetStreamUrl rate limit raised for the bench user")
        print(
            f"each start: GetStreamUrl (JSON via Envoy) + first {FIRST_BYTES // 1024} KiB via Envoy /media/"
        )
        for clients, requests in ((1, max(200, args.requests // 4)), (32, args.requests)):
            asyncio.run(run_level(base, token, clients, requests, procs))
        print(f"server-side means over both levels: {server_side(running)}")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
