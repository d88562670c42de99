"""The local mesh's monitoring: a real Prometheus scraping every process, with the Redis and
PostgreSQL exporters Debian ships and an Alertmanager receiving the repository's alert rules
(observability/), all under the supervisor like the services.

The scrape configuration is generated from the service registry (`meshkit.services`) and the
run's layout, so a new service is scraped without an edit here. Envoy is scraped on its stats
listener (only GET /stats/prometheus, as in k8s) under its native metric names (`envoy_*`): its
own 5xx (no healthy upstream, timeouts) are in those, never in the services'
`http_request_duration_seconds`.

Batch jobs (rec batch, catalog jobs, the launcher's demo-audio) live too briefly to be scraped:
they push their outcome to a Pushgateway (meshkit.jobs), which Prometheus scrapes.

The binaries come from Debian's packages (`make install` installs them where apt-get exists);
without them `make up` starts the mesh unmonitored and says what to install.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from meshctl import datatier, supervisor
from meshctl.processes import ProcessTable
from meshkit.config import PROJECT_ROOT
from meshkit.services import PROCESSES


class _Replica(Protocol):
    @property
    def metrics_port(self) -> int: ...


class _Layout(Protocol):
    @property
    def run_dir(self) -> Path: ...
    @property
    def envoy_stats_port(self) -> int: ...
    @property
    def prometheus_port(self) -> int: ...
    @property
    def alertmanager_port(self) -> int: ...
    @property
    def redis_exporter_port(self) -> int: ...
    @property
    def postgres_exporter_port(self) -> int: ...
    @property
    def pushgateway_port(self) -> int: ...
    def replicas(self, service: str) -> Sequence[_Replica]: ...


class Mesh(Protocol):
    """What of a started mesh (meshctl.mesh.Mesh, which imports this module) monitoring needs."""

    @property
    def layout(self) -> _Layout: ...
    @property
    def database_url(self) -> str: ...
    @property
    def redis_url(self) -> str: ...


log = logging.getLogger(__name__)

OBSERVABILITY_DIR = PROJECT_ROOT / "observability"
RULES_DIR = OBSERVABILITY_DIR / "prometheus"
ALERTMANAGER_CONFIG = OBSERVABILITY_DIR / "alertmanager" / "alertmanager.yml"
# Debian's package names, and the binaries they install.
DEBIAN_PACKAGES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-redis-exporter",
    "prometheus-postgres-exporter",
    "prometheus-pushgateway",
)
PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
REDIS_EXPORTER = "prometheus-redis-exporter"
POSTGRES_EXPORTER = "prometheus-postgres-exporter"
PUSHGATEWAY = "prometheus-pushgateway"
# Locally every few seconds, so a test's traffic shows within one query; production uses 15 s.
SCRAPE_INTERVAL = "2s"
EVALUATION_INTERVAL = "5s"


@dataclass(frozen=True)
class Target:
    """One scrape job: a program of the mesh and where its processes' metrics are."""

    job: str
    addresses: tuple[str, ...]
    path: str = "/metrics"
    # The Pushgateway's series carry the pushing job's own `job` label; keep it.
    honor_labels: bool = False


def binary(name: str) -> str | None:
    return shutil.which(name)


def missing_binaries() -> list[str]:
    wanted = (PROMETHEUS, ALERTMANAGER, REDIS_EXPORTER, POSTGRES_EXPORTER, PUSHGATEWAY)
    return [name for name in wanted if binary(name) is None]


def targets(mesh: Mesh) -> list[Target]:
    """Every process that exports metrics: the services (media_svc too), Envoy and the exporters."""
    layout = mesh.layout
    found = [
        Target(name, tuple(f"127.0.0.1:{r.metrics_port}" for r in layout.replicas(name)))
        for name in PROCESSES
    ]
    found.append(Target("envoy", (f"127.0.0.1:{layout.envoy_stats_port}",), "/stats/prometheus"))
    found.append(Target("redis", (f"127.0.0.1:{layout.redis_exporter_port}",)))
    found.append(Target("postgres", (f"127.0.0.1:{layout.postgres_exporter_port}",)))
    found.append(Target("pushgateway", (f"127.0.0.1:{layout.pushgateway_port}",), honor_labels=True))
    return found


def prometheus_config(mesh: Mesh) -> dict[str, Any]:
    """prometheus.yml for this mesh: one job per target, the alert rules of the repository."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": EVALUATION_INTERVAL,
            "external_labels": {"mesh": "local"},
        },
        "rule_files": [str(path) for path in sorted(RULES_DIR.glob("*.rules.yml"))],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{mesh.layout.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": target.job,
                "metrics_path": target.path,
                "honor_labels": target.honor_labels,
                "static_configs": [{"targets": list(target.addresses), "labels": {"service": target.job}}],
            }
            for target in targets(mesh)
        ],
    }


def prometheus_url(mesh: Mesh) -> str:
    return f"http://127.0.0.1:{mesh.layout.prometheus_port}"


def pushgateway_url(mesh: Mesh) -> str:
    return f"http://127.0.0.1:{mesh.layout.pushgateway_port}"


def alertmanager_url(mesh: Mesh) -> str:
    return f"http://127.0.0.1:{mesh.layout.alertmanager_port}"


def start(mesh: Mesh, procs: ProcessTable) -> str | None:
    """The exporters and Prometheus, supervised; Prometheus's URL once it is ready, or None when
    its binaries are not installed."""
    missing = missing_binaries()
    if missing:
        log.warning("not installed, so the mesh runs unmonitored: %s", ", ".join(missing))
        return None
    layout = mesh.layout
    run_dir = layout.run_dir
    home = run_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    config = write_config(mesh, home / "prometheus.yml")
    supervisor.ensure_running(procs, run_dir, PROJECT_ROOT)
    env = dict(os.environ)
    supervisor.supervise(
        run_dir,
        "redis-exporter",
        [
            _required(REDIS_EXPORTER),
            f"--redis.addr={_redis_address(mesh.redis_url)}",
            f"--web.listen-address=127.0.0.1:{layout.redis_exporter_port}",
        ],
        env=env,
        cwd=run_dir,
    )
    supervisor.supervise(
        run_dir,
        "postgres-exporter",
        [
            _required(POSTGRES_EXPORTER),
            f"--web.listen-address=127.0.0.1:{layout.postgres_exporter_port}",
        ],
        env={**env, "DATA_SOURCE_NAME": _postgres_dsn(mesh.database_url)},
        cwd=run_dir,
    )
    supervisor.supervise(
        run_dir,
        "pushgateway",
        [
            _required(PUSHGATEWAY),
            f"--web.listen-address=127.0.0.1:{layout.pushgateway_port}",
            # A restarted gateway still knows each job's last outcome.
            f"--persistence.file={run_dir / 'pushgateway.data'}",
            "--log.format=json",
        ],
        env=env,
        cwd=run_dir,
    )
    supervisor.supervise(
        run_dir,
        "alertmanager",
        [
            _required(ALERTMANAGER),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={run_dir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{layout.alertmanager_port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.format=json",
        ],
        env=env,
        cwd=run_dir,
    )
    supervisor.supervise(
        run_dir,
        PROMETHEUS,
        [
            _required(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{layout.prometheus_port}",
            "--web.enable-lifecycle",
            "--log.format=json",
        ],
        env=env,
        cwd=run_dir,
    )
    supervisor.wait_started(
        procs, run_dir, ["redis-exporter", "postgres-exporter", "pushgateway", "alertmanager", PROMETHEUS]
    )
    url = prometheus_url(mesh)
    datatier.wait_until(lambda: datatier.http_ok(f"{url}/-/ready"), "Prometheus to be ready", timeout=30)
    gateway = pushgateway_url(mesh)
    datatier.wait_until(
        lambda: datatier.http_ok(f"{gateway}/-/ready"), "the Pushgateway to be ready", timeout=30
    )
    return url


# What `start` runs, in the order `stop` stops it.
PROGRAMS = (PROMETHEUS, "alertmanager", "pushgateway", "redis-exporter", "postgres-exporter")


def stop(run_dir: Path, procs: ProcessTable) -> None:
    """Stop monitoring alone, leaving the mesh running (a test's Prometheus after its module)."""
    for name in PROGRAMS:
        supervisor.release(run_dir, name)
        procs.stop(name)


def _required(name: str) -> str:
    found = binary(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


def _redis_address(redis_url: str) -> str:
    """The exporter takes the server's address; the database number is not part of it."""
    base, _, _db = redis_url.rpartition("/")
    return base if base.startswith("redis://") and base != "redis:/" else redis_url


def _postgres_dsn(database_url: str) -> str:
    return datatier.libpq_url(database_url) + ("&" if "?" in database_url else "?") + "sslmode=disable"


def write_config(mesh: Mesh, path: Path) -> Path:
    """prometheus.yml for this mesh, written to `path`."""
    path.write_text(yaml.safe_dump(prometheus_config(mesh), sort_keys=False))
    return path
