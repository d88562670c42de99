"""The fault mesh: a whole mesh of the fault tests' own (`make test-faults`), supervised like
`make up`'s, on a private data tier (its own PostgreSQL, Redis and tansu broker, never the
machine's shared servers), with Redis and the broker reached through proxies the tests can hold.

The fixtures of tests/conftest.py build it: this file only swaps in its data tier, so logins,
tokens and Envoy clients work as everywhere else. Fault tests run one at a time and each one
leaves the mesh healthy (`healthy_mesh` checks that before and after), so the fault of one test
is never seen by another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl import datatier, mesh
from meshctl.processes import ProcessTable
from meshkit.kafka import ensure_topics
from meshkit.migrate import upgrade_all
from tests.faults.harness import Broker, FaultMesh, wait_all_healthy
from tests.faults.proxy import Proxy


@pytest.fixture(scope="session")
def database_url(pg_dir: Path, procs: ProcessTable) -> str:
    """A private PostgreSQL (stopped with the other processes), whatever the machine runs."""
    url = datatier.start_postgres(pg_dir, procs, f"spotify_faults_{uuid.uuid4().hex[:8]}", private=True)
    upgrade_all(url)
    return url


@pytest.fixture(scope="session")
def real_redis_url(run_dir: Path, procs: ProcessTable) -> str:
    return datatier.start_redis(run_dir, procs, db=0, private=True)


@pytest.fixture(scope="session")
def redis_proxy(real_redis_url: str) -> Iterator[Proxy]:
    port = int(real_redis_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = Proxy(port, framing="chunks").start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def redis_url(redis_proxy: Proxy) -> str:
    """What the mesh's services use: the private Redis, through the proxy."""
    return f"redis://127.0.0.1:{redis_proxy.port}/0"


@pytest.fixture(scope="session")
def broker(run_dir: Path, procs: ProcessTable) -> Iterator[Broker]:
    port = datatier.free_port()
    proxy = Proxy(port, framing="kafka").start()
    broker = Broker(procs, run_dir, port, proxy)
    broker.start()
    yield broker
    proxy.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: Broker) -> str:
    ensure_topics(broker.bootstrap)
    return broker.bootstrap


@pytest.fixture(scope="session")
def fault_mesh(
    running_mesh: mesh.Mesh,
    procs: ProcessTable,
    broker: Broker,
    redis_proxy: Proxy,
    real_redis_url: str,
    pg_dir: Path,
) -> FaultMesh:
    return FaultMesh(running_mesh, procs, broker, redis_proxy, real_redis_url, pg_dir)


@pytest.fixture
def healthy_mesh(fault_mesh: FaultMesh) -> Iterator[FaultMesh]:
    """The fault mesh, every process serving and Envoy seeing every cluster healthy, before and after."""
    wait_all_healthy(fault_mesh)
    yield fault_mesh
    wait_all_healthy(fault_mesh)
