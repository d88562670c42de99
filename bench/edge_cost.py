"""Edge cost per route: what each request costs in every process, beside the floor of its hops.

For `GET /v1/me`, `GET /v1/tracks/{id}`, `GET /v1/search`, stream start (stream URL + first
64 KiB), `GET /v1/playlists/{id}/items` and an add-items write: requests/s at 32 closed-loop
clients through Envoy and CPU milliseconds per request in each process (Envoy, each service,
Redis, PostgreSQL, the load generator), read from the processes' own CPU counters.

The floor is measured in the same run, from the hops of the design as filed:
- its Python gRPC hops (ext_authz, the handler, internal calls) are counted, not declared: the
  delta of every service's own request counters over the route's run, per request; a
  rate-limited route also keeps the rate-limit call the design made in a hop of its own (now
  decided inside ext_authz), so removing that hop shows as a lower ratio. Each is costed as a
  bare grpc.aio unary call (no interceptors, no protobuf) of about the same size, on a server
  process of its own, at the same concurrency: ext_authz at a few hundred bytes, a handler at
  its JSON body's size, and media_svc's ranged read (HTTP, not gRPC) as a bare call answering
  the same 64 KiB;
- Envoy passing the same request through: a front Envoy proxying to a back Envoy that answers a
  body of the route's size (the front's CPU is the floor; stream start passes twice).
The ratio is (Envoy + our Python processes) over that floor; a lever that removes a hop can take
a route below 1.0. The floor's server runs on asyncio's own event loop, the services on uvloop.
PostgreSQL and Redis are printed per request but are in neither side of the ratio yet (their
floor, the same statements run bare, is not measured here).

Production defaults are on: request metrics, JSON logs at INFO, and tracing at the ratio `k8s/`
ships (0.01) to an OTLP receiver that drops everything. Rate limits are raised for the bench
user (the limiter still runs: the same Redis work per request), as bench.playback_stream_start.

    .venv/bin/python -m bench.edge_cost [--seconds 6] [--concurrency 32] [--profile DIR]

`--profile DIR` also samples every Python service of the mesh with py-spy while each route runs
(raw stacks in DIR) and prints, per route and service, where its CPU went: by package of the
innermost Python frame (self) and by package anywhere on the stack (inclusive). The sampler
costs CPU of its own, so a profiled run's figures are not comparable with an unprofiled one's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import httpx
import psutil
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

from auth_svc.settings import AuthSettings
from bench.edge_vs_direct import Result, closed_loop, login, mesh_processes
from bench.observability_cost import environment, receiver
from devdata import demo
from meshctl import datatier, mesh
from meshctl.envoy_config import envoy_binary
from meshkit.services import PROCESSES

OURS = (*PROCESSES, "envoy")
# Calls a request does not make: probes, and what a scrape or a reflection client asks.
NOT_HOPS = re.compile(r"grpc\.health|grpc\.reflection|/metrics|/healthz")
FIRST_BYTES = 65_536
BARE_METHOD = "/bench.Bare/Echo"
# Sizes (request, response) a bare hop is measured at; a hop is costed at the nearest response size.
BARE_SIZES = (256, 2_048, 16_384, FIRST_BYTES)
CONTROL_BYTES = 256  # ext_authz messages: a few headers and a verdict


@dataclass
class Route:
    name: str
    # Returns the size of the body the route's handler answered (the stream URL's, for stream start).
    call: Callable[[aiohttp.ClientSession], Awaitable[int]]
    # Envoy passes the request this many times with a small body, plus once per large one.
    large_passes: tuple[int, ...] = ()
    # In a rate-limit category: the design as filed asked a rate-limit service in a hop of its own
    # (now ext_authz decides in its call), which stays in the floor so the lever shows in the ratio.
    limited: bool = False


@dataclass
class Measured:
    route: Route
    result: Result
    hops: dict[str, float]  # "service method" -> calls per request
    body_bytes: int
    data_cpu_ms: dict[str, float] = field(default_factory=dict)  # redis, postgres per request


def raised_limits(run_dir: Path) -> Path:
    """auth_svc's rate-limit table with every per-user limit raised (the login one kept)."""
    text = AuthSettings().ratelimit_config.read_text()
    sections = re.split(r"(?m)^(?=\[categories\.)", text)
    out = [
        s if s.startswith("[categories.auth]") else re.sub(r"(?m)^limit = \d+", "limit = 100000000", s)
        for s in sections
    ]
    path = run_dir / "ratelimits-edge-cost.toml"
    path.write_text("".join(out))
    return path


def routes(playlist_id: str) -> list[Route]:
    async def get(http: aiohttp.ClientSession, path: str) -> int:
        async with http.get(path) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{path}: {reply.status} {body[:200]!r}")
            return len(body)

    async def stream_start(http: aiohttp.ClientSession) -> int:
        async with http.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID}) as reply:
            if reply.status != 200:
                raise RuntimeError(f"stream: {reply.status}")
            signed = await reply.read()
        path = urllib.parse.urlsplit(json.loads(signed)["url"])
        async with http.get(
            f"{path.path}?{path.query}", headers={"range": f"bytes=0-{FIRST_BYTES - 1}"}
        ) as media:
            body = await media.read()
            if media.status != 206:
                raise RuntimeError(f"media: {media.status}")
            return len(body)

    async def add_items(http: aiohttp.ClientSession) -> int:
        uris = [f"spotify:track:{demo.DEMO_TRACK_ID}"]
        async with http.post(f"/v1/playlists/{playlist_id}/items", json={"uris": uris}) as reply:
            body = await reply.read()
            if reply.status not in (200, 201):
                raise RuntimeError(f"add: {reply.status} {body[:200]!r}")
            return len(body)

    return [
        Route("GET /v1/me", lambda h: get(h, "/v1/me")),
        Route("GET /v1/tracks/{id}", lambda h: get(h, f"/v1/tracks/{demo.DEMO_TRACK_ID}")),
        Route(
            "GET /v1/search",
            lambda h: get(h, "/v1/search?q=midnight&type=track,album,artist&limit=10"),
            limited=True,
        ),
        Route("stream start", stream_start, large_passes=(FIRST_BYTES,), limited=True),
        Route(
            "GET /v1/playlists/{id}/items", lambda h: get(h, f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items")
        ),
        Route("POST /v1/playlists/{id}/items", add_items, limited=True),
    ]


def scrape(target: mesh.Mesh) -> dict[str, float]:
    """Every service's served-call counters: "service method" -> count."""
    counts: dict[str, float] = {}
    for name in PROCESSES:
        port = target.layout.metrics_ports.get(name)
        if port is None:
            continue
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            if family.name not in ("http_request_duration_seconds", "control_call_duration_seconds"):
                continue
            for sample in family.samples:
                if not sample.name.endswith("_count"):
                    continue
                what = sample.labels.get("route") or sample.labels.get("rpc", "?")
                if NOT_HOPS.search(what):
                    continue
                key = f"{name} {sample.labels.get('method', '')} {what}".replace("  ", " ")
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def listening(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def data_tier(target: mesh.Mesh) -> dict[str, list[psutil.Process]]:
    """Redis's process, and PostgreSQL's postmaster with its backends."""
    found: dict[str, list[psutil.Process]] = {}
    redis_port = urllib.parse.urlsplit(target.redis_url).port or 6379
    pg_port = urllib.parse.urlsplit(target.database_url.replace("+psycopg", "")).port or 5432
    for name, port in (("redis", redis_port), ("postgres", pg_port)):
        proc = listening(port)
        if proc is not None:
            found[name] = [proc]
    return found


def tier_cpu(tier: dict[str, list[psutil.Process]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, roots in tier.items():
        total = 0.0
        for root in roots:
            for proc in (root, *root.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
        out[name] = total
    return out


async def measure_route(
    target: mesh.Mesh, route: Route, token: str, concurrency: int, seconds: float, profile: Path | None = None
) -> Measured:
    processes = mesh_processes(target, OURS)
    samplers = profiling(processes, route, seconds, profile) if profile else contextlib.nullcontext()
    tier = data_tier(target)
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=target.envoy_url, connector=connector, headers=headers) as http:
        body_bytes = await route.call(http)  # also a warm-up of the route's first-call work
        before, tier0 = scrape(target), tier_cpu(tier)
        made = 0

        async def call() -> None:
            nonlocal made
            await route.call(http)
            made += 1

        with samplers:
            result = await closed_loop(route.name, concurrency, seconds, call, processes)
        after, tier1 = scrape(target), tier_cpu(tier)
    # The counters saw every call between the scrapes (closed_loop's warm-up and drain too).
    hops = {k: (v - before.get(k, 0.0)) / max(made, 1) for k, v in after.items() if v > before.get(k, 0.0)}
    data_cpu = {k: (tier1[k] - tier0[k]) / max(made, 1) * 1000 for k in tier1}
    return Measured(route, result, hops, body_bytes, data_cpu)


# --- profiles ------------------------------------------------------------------------------------


@contextlib.contextmanager
def profiling(
    processes: dict[str, psutil.Process], route: Route, seconds: float, directory: Path
) -> Iterator[None]:
    """py-spy sampling every Python service of the mesh while the route runs (warm-up included)."""
    spy = Path(sys.executable).with_name("py-spy")
    samplers = []
    for name, proc in processes.items():
        if name == "envoy":
            continue
        out = directory / f"{slug(route.name)}.{name}.txt"
        samplers.append(
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--rate",
                    "250",
                    # Only threads holding the GIL: Python's CPU, not its waits.
                    "--gil",
                    "--format",
                    "raw",
                    "--duration",
                    str(int(seconds + 2)),
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.wait(timeout=seconds + 30)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def package_of(frame: str) -> str:
    """`handler (meshkit/interceptors.py:120)` -> `meshkit.interceptors`; a library -> its top package."""
    match = re.search(r"\(([^():]+?)(?::\d+)?\)$", frame)
    if match is None:
        return "<native>"
    parts = Path(match.group(1).split(".")[0]).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    ours = {"meshkit", "auth_svc", "catalog_svc", "library_svc", "playback_svc", "rec_svc", "media_svc"}
    if parts and parts[0] in ours:
        return ".".join(parts[:2])
    return parts[0] if parts else "?"


# On (nearly) every stack of a service, so saying nothing in "inclusive".
ENTRY = frozenset(
    {"asyncio", "runpy", "<native>", "threading", "meshkit.server", "meshkit.__main__"}
    | {f"{svc}.{part}" for svc in PROCESSES for part in ("server", "__main__")}
)
# Fewer samples than this over a route's run: a service the route does not call (probes, scrapes).
MIN_SAMPLES = 100


def profile_summary(path: Path, top: int = 8) -> str:
    """Shares of the samples: by the innermost frame's package (self) and by any frame's (inclusive)."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        # Thread and process headers py-spy puts first are not code.
        code = [f for f in frames if "(" in f]
        if not code:
            continue
        total += n
        own[package_of(code[-1])] += n
        for package in {package_of(f) for f in code} - ENTRY:
            anywhere[package] += n
    if total < MIN_SAMPLES:
        return ""

    def shares(counter: Counter[str]) -> str:
        return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in counter.most_common(top))

    return f"    self: {shares(own)}\n    inclusive: {shares(anywhere)}\n    ({total} samples)"


def profiles_report(directory: Path) -> str:
    lines = [f"profiles (py-spy, raw stacks in {directory}):"]
    for path in sorted(directory.glob("*.txt")):
        summary = profile_summary(path)
        if summary:  # a service the route does not call is left out
            lines.extend([f"  {path.stem}", summary])
    return "\n".join(lines)


# --- floors --------------------------------------------------------------------------------------


def bare_server(port: int) -> None:
    """A grpc.aio server with one generic unary method and nothing else: the price of a hop."""

    async def echo(request: bytes, context: aio.ServicerContext) -> bytes:
        return b"x" * int(request[:8])

    async def serve() -> None:
        server = aio.server()
        handler = grpc.method_handlers_generic_handler(
            "bench.Bare", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


@contextlib.contextmanager
def bare_server_process() -> Iterator[tuple[str, psutil.Process]]:
    port = datatier.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.edge_cost", "--bare-server", str(port)])
    try:
        yield f"127.0.0.1:{port}", psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


async def bare_hop_cost(
    address: str, server: psutil.Process, concurrency: int, seconds: float
) -> dict[int, float]:
    """Server CPU ms per bare call, at each response size in BARE_SIZES."""
    costs: dict[int, float] = {}
    async with aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        echo = channel.unary_unary(BARE_METHOD)
        for size in BARE_SIZES:
            request = f"{size:08d}".encode() + b"r" * (CONTROL_BYTES - 8)

            async def call(request: bytes = request) -> None:
                await echo(request, timeout=10)

            result = await closed_loop(f"bare {size}", concurrency, seconds, call, {"bare": server})
            costs[size] = result.cpu_ms_per_request("bare")
    return costs


def hop_floor(costs: dict[int, float], response_bytes: int) -> float:
    nearest = min(costs, key=lambda size: abs(size - response_bytes))
    return costs[nearest]


ENVOY_PAIR = """
static_resources:
  listeners:
  - name: front
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {front} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: back }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: back
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: back
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {back} }} }} }}
"""  # noqa: E501

ENVOY_BACK = """
static_resources:
  listeners:
  - name: back
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {back} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: back
          codec_type: HTTP2
          route_config:
            max_direct_response_body_size_bytes: 1048576
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
{routes}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
"""  # noqa: E501


@contextlib.contextmanager
def envoy_pair(sizes: list[int]) -> Iterator[tuple[str, psutil.Process]]:
    """A front Envoy that only passes requests through to a back Envoy answering `/N` with N bytes."""
    front, back = datatier.free_port(), datatier.free_port()
    routes_yaml = "\n".join(
        f'              - match: {{ path: "/{n}" }}\n'
        f'                direct_response: {{ status: 200, body: {{ inline_string: "{"x" * n}" }} }}'
        for n in sizes
    )
    with tempfile.TemporaryDirectory(prefix="edge-cost-envoy-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for name, text in (
                ("back", ENVOY_BACK.format(back=back, routes=routes_yaml)),
                ("front", ENVOY_PAIR.format(front=front, back=back)),
            ):
                config = Path(tmp) / f"{name}.yaml"
                config.write_text(text)
                procs.append(
                    subprocess.Popen(
                        [
                            envoy_binary(),
                            "-c",
                            str(config),
                            "--concurrency",
                            "2",
                            "--log-level",
                            "warn",
                            "--base-id",
                            str(os.getpid() % 60000 + len(procs) + 1),
                        ],
                        stdout=subprocess.DEVNULL,
                    )
                )
            url = f"http://127.0.0.1:{front}"
            datatier.wait_until(lambda: datatier.http_ok(f"{url}/{sizes[0]}"), "the bare Envoy pair")
            yield url, psutil.Process(procs[1].pid)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


async def envoy_pass_cost(
    url: str, front: psutil.Process, sizes: list[int], concurrency: int, seconds: float
) -> dict[int, float]:
    """Front Envoy CPU ms per request passed through, per body size the back Envoy serves."""
    costs: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as http:
        for size in sizes:

            async def call(size: int = size) -> None:
                async with http.get(f"/{size}") as reply:
                    await reply.read()

            result = await closed_loop(f"envoy {size}", concurrency, seconds, call, {"envoy": front})
            costs[size] = result.cpu_ms_per_request("envoy")
    return costs


# --- report --------------------------------------------------------------------------------------


def floor_of(m: Measured, hop_costs: dict[int, float], pass_costs: dict[int, float]) -> tuple[float, float]:
    """(Python hops floor, Envoy floor) in CPU ms per request."""
    python = 0.0
    for key, calls in m.hops.items():
        if "Check" in key:
            size = CONTROL_BYTES
        elif key.startswith("media_svc"):
            size = FIRST_BYTES
        else:
            size = m.body_bytes
        python += calls * hop_floor(hop_costs, size)
    if m.route.limited:
        python += hop_floor(hop_costs, CONTROL_BYTES)
    small = min(pass_costs, key=lambda size: abs(size - m.body_bytes))
    envoy = pass_costs[small] + sum(pass_costs[size] for size in m.route.large_passes)
    return python, envoy


def report(rows: list[Measured], hop_costs: dict[int, float], pass_costs: dict[int, float]) -> str:
    lines = [
        "floors: bare grpc.aio hop, server CPU ms per call by response size: "
        + ", ".join(f"{s} B {c:.3f}" for s, c in hop_costs.items()),
        "        Envoy passing a request through, CPU ms by body size: "
        + ", ".join(f"{s} B {c:.3f}" for s, c in pass_costs.items()),
        "",
    ]
    heads = [*OURS, "redis", "postgres"]
    short = {n: n.replace("_svc", "") for n in heads}
    lines.append(
        f"{'route':30} {'req/s':>7} {'p99 ms':>7} "
        + " ".join(f"{short[n]:>8}" for n in heads)
        + f" {'client':>7} {'ours':>7} {'floor':>7} {'ratio':>6}"
    )
    for m in rows:
        r = m.result
        cpu = {n: r.cpu_ms_per_request(n) for n in OURS} | m.data_cpu_ms
        client = r.client_cpu_s / max(len(r.latencies_s), 1) * 1000
        ours = sum(cpu[n] for n in OURS)
        python, envoy = floor_of(m, hop_costs, pass_costs)
        floor = python + envoy
        lines.append(
            f"{m.route.name:30} {r.rps:7.0f} {r.pct(0.99):7.1f} "
            + " ".join(f"{cpu.get(n, 0.0):8.3f}" for n in heads)
            + f" {client:7.3f} {ours:7.3f} {floor:7.3f} {ours / floor if floor else float('nan'):6.2f}"
        )
    lines.append("\nhops per request (served calls, from each service's own counters):")
    for m in rows:
        lines.append(f"  {m.route.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(m.hops.items())))
    lines.append(
        "  (the floor of a rate-limited route also counts the rate-limit call the design as filed made,"
        " now folded into ext_authz)"
    )
    lines.append(
        "\ngoal: every ratio <= 1.30 (CPU ms per request are per process; 'ours' is Envoy + services)"
    )
    lines.append(f"machine load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def bench_playlist(target: mesh.Mesh) -> tuple[str, str]:
    """A token of the demo listener, and a playlist of theirs for the add-items writes."""
    body = login(target.envoy_url)
    token = body["access_token"]
    with httpx.Client(base_url=target.envoy_url, headers={"authorization": f"Bearer {token}"}) as http:
        created = http.post("/v1/me/playlists", json={"name": "edge cost bench", "public": False})
        created.raise_for_status()
        return token, str(created.json()["id"])


async def run(target: mesh.Mesh, args: argparse.Namespace, token: str, playlist_id: str) -> list[Measured]:
    rows = []
    for route in routes(playlist_id):
        print(f"  {route.name} ...", flush=True)
        rows.append(await measure_route(target, route, token, args.concurrency, args.seconds, args.profile))
    return rows


@contextlib.contextmanager
def production_mesh(prefix: str) -> Iterator[mesh.Mesh]:
    """A private mesh with the production observability defaults (metrics, JSON logs at INFO,
    tracing at the ratio k8s ships to a receiver that drops everything) and the per-user rate
    limits raised; the environment that says so stays set while it runs (a re-rendered Envoy
    config reads it too)."""
    with contextlib.ExitStack() as stack:
        otlp = stack.enter_context(receiver())
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        production: dict[str, str | None] = {
            "METRICS_ENABLED": "true",
            "LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
            "TRACE_SAMPLE_RATIO": "0.01",
            "AUTH_RATELIMIT_CONFIG": str(raised_limits(run_dir)),
        }
        stack.enter_context(environment(production))
        print("starting a private mesh with the production observability defaults ...", flush=True)
        yield stack.enter_context(mesh.private_mesh(prefix, audio_tracks=1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per row")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", type=Path, help="sample the services with py-spy into this directory")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.bare_server:
        bare_server(args.bare_server)
        return
    with production_mesh("bench-edge-cost-") as target:
        token, playlist_id = bench_playlist(target)
        rows = asyncio.run(run(target, args, token, playlist_id))
    print("  floors ...", flush=True)
    with bare_server_process() as (address, server):
        hop_costs = asyncio.run(bare_hop_cost(address, server, args.concurrency, args.seconds))
    small = {min(m.body_bytes, 60_000) for m in rows if not m.route.large_passes}
    sizes = sorted({1024, FIRST_BYTES, *small})
    with envoy_pair(sizes) as (url, front):
        pass_costs = asyncio.run(envoy_pass_cost(url, front, sizes, args.concurrency, args.seconds))
    print(report(rows, hop_costs, pass_costs))
    if args.profile:
        print(profiles_report(args.profile))


if __name__ == "__main__":
    main()
