"""The local mesh: data tier, migrations, every service, media origin and Envoy, started in order.

`make up` and the end-to-end test fixture both use this module; they differ only in the
layout (ports, run directory, database name), so tests never collide with a running mesh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshctl import datatier, observability, supervisor
from meshctl.processes import ProcessTable
from meshctl.progress import Steps
from meshkit import services
from meshkit.config import PROJECT_ROOT, Settings
from meshkit.services import DEFAULT_PORTS, INTERNAL_PORTS, METRICS_PORTS, PROCESSES

log = logging.getLogger(__name__)

# How many processes of every service `make up` runs (behind Envoy, and round-robin between services).
REPLICAS_ENV = "MESH_REPLICAS"


@dataclass(frozen=True)
class Replica:
    """One process of a service. The first keeps the service's name (its logs, `make status`), the
    others are `<service>-<n>`."""

    service: str
    index: int
    port: int
    metrics_port: int
    internal_port: int | None

    @property
    def name(self) -> str:
        return self.service if self.index == 1 else f"{self.service}-{self.index}"


def service_of(process: str) -> str:
    """The service a process name belongs to (`catalog_svc-2` is catalog_svc's second replica)."""
    base, _, index = process.rpartition("-")
    return base if base in PROCESSES and index.isdigit() else process


@dataclass
class Layout:
    """Where everything of one mesh lives: its run directory, database and ports."""

    run_dir: Path = PROJECT_ROOT / ".run"
    database: str = "spotify"
    redis_db: int = 0
    envoy_port: int = 8080
    envoy_admin_port: int = 9901
    envoy_stats_port: int = 9902
    kafka_port: int = 9092
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    redis_exporter_port: int = 9121
    postgres_exporter_port: int = 9187
    pushgateway_port: int = 9091
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(METRICS_PORTS))
    # Where the other processes call each gRPC service (`ports` are Envoy's).
    internal_ports: dict[str, int] = field(default_factory=lambda: dict(INTERNAL_PORTS))
    storage_root: Path = PROJECT_ROOT / "data" / "objects"
    # The ports of each service's processes after the first (`port`, `metrics_port` and, for gRPC
    # services, `internal_port`); empty with one replica. See `with_replicas`.
    more_replicas: dict[str, list[dict[str, int]]] = field(default_factory=dict)

    @property
    def replica_count(self) -> int:
        return 1 + max((len(more) for more in self.more_replicas.values()), default=0)

    def replicas(self, service: str) -> list[Replica]:
        first = Replica(
            service, 1, self.ports[service], self.metrics_ports[service], self.internal_ports.get(service)
        )
        more = [
            Replica(service, index, ports["port"], ports["metrics_port"], ports.get("internal_port"))
            for index, ports in enumerate(self.more_replicas.get(service, []), start=2)
        ]
        return [first, *more]

    def all_replicas(self) -> list[Replica]:
        """Every service process, the first replicas first (in the registry's order)."""
        every = [self.replicas(service) for service in PROCESSES]
        return sorted((r for rs in every for r in rs), key=lambda r: r.index)

    def call_target(self, service: str) -> str:
        """Where other processes call a gRPC service: its one internal port, or the list of its
        replicas' (gRPC's `ipv4:` target, balanced round-robin by meshkit.channels)."""
        addresses = [f"127.0.0.1:{r.internal_port or r.port}" for r in self.replicas(service)]
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)


def with_replicas(layout: Layout, count: int) -> Layout:
    """The layout with `count` processes of every service, the extra ones on free loopback ports."""
    if count < 1:
        raise ValueError(f"{REPLICAS_ENV} must be at least 1, not {count}")
    more = {
        service: [
            {
                "port": datatier.free_port(),
                "metrics_port": datatier.free_port(),
                **({"internal_port": datatier.free_port()} if service in layout.internal_ports else {}),
            }
            for _ in range(count - 1)
        ]
        for service in PROCESSES
    }
    return dataclasses.replace(layout, more_replicas=more if count > 1 else {})


def replicas_from_env() -> int:
    raw = os.environ.get(REPLICAS_ENV, "1").strip() or "1"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{REPLICAS_ENV} must be a whole number, not {raw!r}") from None


@dataclass
class Mesh:
    """A started mesh: what a client needs to reach it."""

    layout: Layout
    database_url: str
    redis_url: str
    kafka_bootstrap: str
    # Where batch jobs push their outcome; set once monitoring runs (meshctl.observability).
    pushgateway_url: str = ""

    @property
    def envoy_url(self) -> str:
        return f"http://127.0.0.1:{self.layout.envoy_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.layout.envoy_port}"

    def service_env(self) -> dict[str, str]:
        """The environment every service process starts with."""
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "PUBLIC_BASE_URL": self.envoy_url,
            "STORAGE_ROOT": str(self.layout.storage_root),
            "REC_INDEX_DIR": str(self.layout.storage_root.parent / "rec-indexes"),
            "PYTHONUNBUFFERED": "1",
            # The committed development keys are allowed (meshkit.secrets); production refuses them.
            "MESH_ENV": "development",
        }
        if self.pushgateway_url:
            env["PUSHGATEWAY_URL"] = self.pushgateway_url
        for service in services.SERVICES:
            env[service.addr_env] = self.layout.call_target(service.name)
        return env

    def save(self) -> None:
        state = {**asdict(self), "layout": {**asdict(self.layout)}}
        (self.layout.run_dir / "mesh.json").write_text(json.dumps(state, default=str, indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> Mesh | None:
        path = run_dir / "mesh.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        layout = Layout(**state.pop("layout"))
        layout.run_dir = Path(layout.run_dir)
        layout.storage_root = Path(layout.storage_root)
        return cls(layout=layout, **state)


def start_data_tier(layout: Layout, procs: ProcessTable) -> Mesh:
    """PostgreSQL, Redis and Kafka (KAFKA_BOOTSTRAP, when set, names an existing broker)."""
    database_url = datatier.start_postgres(layout.run_dir, procs, layout.database)
    redis_url = datatier.start_redis(layout.run_dir, procs, layout.redis_db)
    kafka = os.environ.get("KAFKA_BOOTSTRAP") or datatier.start_kafka(
        layout.run_dir, procs, layout.kafka_port
    )
    return Mesh(layout, database_url, redis_url, kafka)


def prepare(mesh: Mesh) -> None:
    """Migrations and Kafka topics; both are idempotent."""
    from meshkit.kafka import ensure_topics
    from meshkit.migrate import upgrade_all

    upgrade_all(mesh.database_url)
    ensure_topics(mesh.kafka_bootstrap)


def start_services(mesh: Mesh, procs: ProcessTable, source: Path = PROJECT_ROOT) -> None:
    """Every gRPC service and the media origin, each on its layout port, under the supervisor.

    `source` is the tree their code is imported from: another release's checkout runs that
    release's services against this mesh (the rolling-deploy test)."""
    run_dir = mesh.layout.run_dir
    supervisor.ensure_running(procs, run_dir, PROJECT_ROOT)
    base_env = mesh.service_env()
    if source != PROJECT_ROOT:
        # Ahead of this checkout's editable install, which Python consults after the path.
        base_env["PYTHONPATH"] = os.pathsep.join([str(source / "gen"), str(source)])
    replicas = mesh.layout.all_replicas()
    for replica in replicas:
        env = {
            **base_env,
            "LISTEN_ADDR": f"127.0.0.1:{replica.port}",
            "METRICS_PORT": str(replica.metrics_port),
        }
        if replica.internal_port is not None:
            env["INTERNAL_LISTEN_ADDR"] = f"127.0.0.1:{replica.internal_port}"
        argv = [sys.executable, "-m", replica.service]
        supervisor.supervise(run_dir, replica.name, argv, env=env, cwd=source)
    supervisor.wait_started(procs, run_dir, [r.name for r in replicas])


def _serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def serving(replica: Replica) -> bool:
    """Whether a process answers its health check (gRPC's, or the media origin's /healthz)."""
    if not services.get(replica.service).grpc:
        return datatier.http_ok(f"http://127.0.0.1:{replica.port}/healthz")
    return _serving(f"127.0.0.1:{replica.port}")


def wait_healthy(mesh: Mesh, procs: ProcessTable, timeout: float = 60.0) -> None:
    """Until every service reports SERVING; a service that died fails fast with its log's tail."""
    deadline = time.monotonic() + timeout
    pending = {r.name: r for r in mesh.layout.all_replicas()}
    while pending and time.monotonic() < deadline:
        states = supervisor.read_state(mesh.layout.run_dir)
        for name, replica in sorted(pending.items()):
            started = procs.get(name)
            state = states.get(name)
            if started is None or not started.alive() or (state is not None and state.restarts):
                tail = procs.log_path(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited during start-up; its log ends with:\n{tail}")
            if serving(replica):
                del pending[name]
        if pending:
            time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not SERVING after {timeout:.0f}s: {', '.join(sorted(pending))}")


def envoy_overrides(mesh: Mesh) -> dict:
    """What the local Envoy target needs changed for this layout."""
    layout = mesh.layout
    return {
        "listen_port": layout.envoy_port,
        "admin_port": layout.envoy_admin_port,
        # Prometheus scrapes Envoy where the cluster's does (envoy/targets/k8s.yaml).
        "stats_listen": f"127.0.0.1:{layout.envoy_stats_port}",
        # Every replica of a service is an endpoint of its cluster (round robin, health checked).
        "ports": {service: [r.port for r in layout.replicas(service)] for service in PROCESSES},
        "access_log_path": str(layout.run_dir / "logs" / "envoy-access.log"),
        # Envoy traces to the collector the services export to, keeping the share of requests
        # the services keep of their own traces (every one, unless TRACE_SAMPLE_RATIO says less).
        "tracing_collector": os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        "tracing_sample_percent": 100 * Settings().trace_sample_ratio,
    }


def envoy_sees_all_healthy(mesh: Mesh) -> bool:
    """Envoy's admin endpoint reports every host of every upstream cluster healthy (a restarted
    Envoy is ready before its first health checks have passed)."""
    try:
        reply = httpx.get(f"http://127.0.0.1:{mesh.layout.envoy_admin_port}/clusters", timeout=2).text
    except httpx.HTTPError:
        return False
    flags = [line for line in reply.splitlines() if "::health_flags::" in line]
    return bool(flags) and all(line.endswith("::healthy") for line in flags)


def start_envoy(mesh: Mesh, procs: ProcessTable, descriptor: Path | None = None) -> None:
    """Envoy on the layout's ports; `descriptor` is the contracts' descriptor set it routes and
    transcodes (another release's, in front of that release's services), else this checkout's."""
    from meshctl import envoy_config

    overrides = envoy_overrides(mesh)
    if descriptor is not None:
        overrides |= {"descriptor": str(descriptor), "descriptor_source": str(descriptor)}
    config = envoy_config.write("local", mesh.layout.run_dir / "envoy.yaml", overrides=overrides)
    binary = Path(sys.executable).parent / "envoy"
    run_dir = mesh.layout.run_dir
    supervisor.ensure_running(procs, run_dir, PROJECT_ROOT)
    supervisor.supervise(
        run_dir,
        "envoy",
        [str(binary), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        env=dict(os.environ),
        cwd=PROJECT_ROOT,
    )
    supervisor.wait_started(procs, run_dir, ["envoy"])
    ready = f"http://127.0.0.1:{mesh.layout.envoy_admin_port}/ready"
    try:
        datatier.wait_until(lambda: datatier.http_ok(ready), "Envoy to be ready", timeout=30)
    except TimeoutError:
        tail = procs.log_path("envoy").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"Envoy did not become ready; its log ends with:\n{tail}") from None


def free_layout(run_dir: Path, database: str = "spotify") -> Layout:
    """A layout on free loopback ports, for benchmarks that must not collide with `make up`."""
    names = PROCESSES
    return Layout(
        run_dir=run_dir,
        database=database,
        envoy_port=datatier.free_port(),
        envoy_admin_port=datatier.free_port(),
        envoy_stats_port=datatier.free_port(),
        kafka_port=datatier.free_port(),
        prometheus_port=datatier.free_port(),
        alertmanager_port=datatier.free_port(),
        redis_exporter_port=datatier.free_port(),
        postgres_exporter_port=datatier.free_port(),
        pushgateway_port=datatier.free_port(),
        ports={n: datatier.free_port() for n in names},
        metrics_ports={n: datatier.free_port() for n in names},
        internal_ports={n: datatier.free_port() for n in INTERNAL_PORTS},
        storage_root=run_dir / "objects",
    )


@contextlib.contextmanager
def private_mesh(prefix: str, *, audio_tracks: int = 4, monitored: bool = False) -> Iterator[Mesh]:
    """A whole mesh on free ports with its own database, stopped (and the database dropped) afterwards.

    Unmonitored unless asked: a benchmark's figures should not include Prometheus scraping."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        layout = free_layout(Path(tmp), database=f"spotify_bench_{secrets.token_hex(4)}")
        started: Mesh | None = None
        try:
            started = up(layout, audio_tracks=audio_tracks, monitored=monitored)
            yield started
        finally:
            # Also when `up` failed half-way: whatever it started must not outlive the temp dir.
            recorded = Mesh.load(layout.run_dir) if started is None else started
            down(layout)  # stops a private PostgreSQL too: only the machine's needs the database dropped
            if recorded is not None and recorded.database_url.startswith(
                datatier.MACHINE_POSTGRES.format(db="")
            ):
                datatier.drop_database(
                    datatier.with_database(recorded.database_url, "postgres"), layout.database
                )


# The background job that gives the rest of the demo tracks audio after `up` returns.
DEMO_AUDIO_JOB = "demo-audio"
# Tracks `up` ingests itself before the services start (the README's track is the first).
FIRST_AUDIO_TRACKS = 8


def up(
    layout: Layout,
    *,
    demo: bool = True,
    audio_tracks: int | None = None,
    steps: Steps | None = None,
    monitored: bool = True,
) -> Mesh:
    """Start whatever of the mesh is not running yet and return it once everything answers.

    With `audio_tracks` None (`make up`), the first demo tracks get audio before the services
    start and a background job (`demo-audio`) ingests the rest and then rebuilds the
    recommendations; with a number, exactly that many are ingested before `up` returns.
    `monitored` adds Prometheus, the Pushgateway and the exporters (when installed; see
    meshctl.observability).
    """
    steps = steps or Steps(enabled=False)
    existing = running(layout)
    if existing is not None:
        return existing
    down(layout)  # a half-running mesh is restarted cleanly
    procs = ProcessTable(layout.run_dir)
    with steps.step("PostgreSQL, Redis and Kafka"):
        mesh = start_data_tier(layout, procs)
    mesh.save()
    with steps.step("schemas migrated, topics created"):
        prepare(mesh)
    background = demo and audio_tracks is None
    if demo:
        from devdata import demo as demo_data

        with steps.step("demo catalog, accounts and playlist"):
            demo_data.load_if_empty(mesh.database_url)
        first = FIRST_AUDIO_TRACKS if audio_tracks is None else audio_tracks
        with steps.items("demo audio synthesized and ingested") as update:
            demo_data.load_audio(
                mesh.database_url,
                layout.storage_root,
                count=first,
                public_base_url=mesh.envoy_url,
                progress=update,
            )
    with steps.step("services started and healthy"):
        start_services(mesh, procs)
        wait_healthy(mesh, procs)
    with steps.step("Envoy ready"):
        start_envoy(mesh, procs)
    if monitored:
        # Before the first batch job, so that its outcome reaches the Pushgateway.
        with steps.step("Prometheus, Alertmanager, the Pushgateway and the exporters ready"):
            if observability.start(mesh, procs) is not None:
                mesh.pushgateway_url = observability.pushgateway_url(mesh)
                mesh.save()
    with steps.step("recommendations built"):
        build_recommendations(mesh)
    if background:
        start_demo_audio_job(mesh, procs)
    return mesh


def running(layout: Layout) -> Mesh | None:
    """The mesh of this layout when every process it recorded still runs (background jobs aside)."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    existing = Mesh.load(layout.run_dir)
    serving = [p for p in ProcessTable(layout.run_dir).all() if p.name != DEMO_AUDIO_JOB]
    if existing is not None and serving and all(p.alive() for p in serving):
        return existing
    return None


def start_demo_audio_job(mesh: Mesh, procs: ProcessTable) -> None:
    """`python -m meshctl demo-audio` in the background, at low priority (it is CPU bound)."""
    procs.spawn(
        DEMO_AUDIO_JOB,
        ["nice", "-n", "10", sys.executable, "-m", "meshctl", "demo-audio"],
        env=mesh.service_env(),
        cwd=PROJECT_ROOT,
    )


def demo_audio_progress(layout: Layout) -> tuple[int, int] | None:
    """(tracks with audio, demo tracks to get audio) as the background job last wrote it."""
    path = layout.run_dir / f"{DEMO_AUDIO_JOB}.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    return int(state["playable"]), int(state["total"])


def write_demo_audio_progress(layout: Layout, playable: int, total: int) -> None:
    path = layout.run_dir / f"{DEMO_AUDIO_JOB}.json"
    path.write_text(json.dumps({"playable": playable, "total": total}))


def build_recommendations(mesh: Mesh) -> None:
    """Run rec_svc's batch job once (embeddings, indexes, Discover Weekly) and let rec_svc load it;
    until then its recommendation RPCs answer UNAVAILABLE. `make recs` runs the same job again."""
    log_path = ProcessTable(mesh.layout.run_dir).log_path("rec-batch")
    with log_path.open("ab") as log_file:
        done = subprocess.run(
            [sys.executable, "-m", "rec_svc.batch", "build"],
            env=mesh.service_env(),
            cwd=PROJECT_ROOT,
            timeout=600,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the recommendation batch job failed; {log_path} ends with:\n{tail}")


# The supervisor first (so that nothing is restarted behind our back), then Envoy (no new
# requests), the services (they drain) and the data tier.
STOP_ORDER = (
    supervisor.NAME,
    DEMO_AUDIO_JOB,
    *observability.PROGRAMS,
    "envoy",
    *PROCESSES,
    "kafka",
    "redis",
    "postgres",
)


def down(layout: Layout) -> list[str]:
    """Stop exactly the processes this layout's run directory recorded; returns their names."""
    stopped = stop_all(ProcessTable(layout.run_dir))
    (layout.run_dir / "mesh.json").unlink(missing_ok=True)
    return stopped


def stop_all(procs: ProcessTable) -> list[str]:
    """Stop every recorded process in STOP_ORDER (then any other); returns the names that ran."""
    stopped = []
    recorded = {p.name for p in procs.all()}
    rank = {name: position for position, name in enumerate(STOP_ORDER)}
    # A service's other replicas stop with its first; anything unknown stops last.
    for name in sorted(recorded, key=lambda n: (rank.get(service_of(n), len(rank)), n)):
        if name == "postgres":
            datatier.stop_postgres(procs)
            stopped.append(name)
        elif procs.stop(name):
            stopped.append(name)
    supervisor.forget(procs.run_dir)
    return stopped
