"""Shared fixtures: real PostgreSQL, Redis and Kafka, and a whole mesh behind its own Envoy.

Each test run gets its own database (and its own broker and ports), so runs never collide
with each other or with a mesh started by `make up`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl import datatier, mesh
from meshctl.processes import ProcessTable


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def procs(run_dir: Path) -> Iterator[ProcessTable]:
    table = ProcessTable(run_dir)
    yield table
    for started in reversed(table.all()):
        if started.name == "postgres":
            datatier.stop_postgres(table)
        else:
            table.stop(started.name)


@pytest.fixture(scope="session")
def database_url(run_dir: Path, procs: ProcessTable) -> Iterator[str]:
    """A fresh, migrated database for this run, dropped at the end."""
    from meshkit.migrate import upgrade_all

    name = f"spotify_test_{uuid.uuid4().hex[:10]}"
    url = datatier.start_postgres(run_dir, procs, name)
    upgrade_all(url)
    yield url
    datatier.drop_database(datatier.with_database(url, "postgres"), name)


@pytest.fixture(scope="session")
def redis_url(run_dir: Path, procs: ProcessTable) -> str:
    return datatier.start_redis(run_dir, procs, db=1)


@pytest.fixture(scope="session")
def kafka_bootstrap(run_dir: Path, procs: ProcessTable) -> str:
    """KAFKA_BOOTSTRAP when set, else a private tansu broker on a free port."""
    from meshkit.kafka import ensure_topics

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or datatier.start_kafka(
        run_dir, procs, datatier.free_port()
    )
    ensure_topics(bootstrap)
    return bootstrap


@pytest.fixture(scope="session")
def running_mesh(
    run_dir: Path, procs: ProcessTable, database_url: str, redis_url: str, kafka_bootstrap: str
) -> mesh.Mesh:
    """Every service, the media origin and Envoy on free ports, with the demo data loaded."""
    from meshctl import demo

    layout = mesh.Layout(
        run_dir=run_dir,
        envoy_port=datatier.free_port(),
        envoy_admin_port=datatier.free_port(),
        ports={name: datatier.free_port() for name in (*mesh.GRPC_SERVICES, "media_svc")},
        metrics_ports={name: datatier.free_port() for name in (*mesh.GRPC_SERVICES, "media_svc")},
        storage_root=run_dir / "objects",
    )
    running = mesh.Mesh(layout, database_url, redis_url, kafka_bootstrap)
    demo.load_if_empty(database_url)
    mesh.start_services(running, procs)
    mesh.wait_healthy(running, procs)
    mesh.start_envoy(running, procs)
    return running
