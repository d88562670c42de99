"""The fault mesh's levers: its processes, database, Redis and broker, and waiting with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import psycopg
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from meshctl import datatier, mesh, supervisor
from meshctl.processes import ProcessTable, Started
from meshkit import services
from meshkit.kafka import ADMIN_CLIENT_ID
from tests.faults.proxy import Proxy, Trap
from tests.support import until

# What a client got: an answer, Spotify's 503 error object, gRPC's UNAVAILABLE, or no connection.
OK, SHAPED_503, UNAVAILABLE, NO_CONNECTION = "ok", "503 in Spotify's shape", "UNAVAILABLE", "no connection"


def json_outcome(reply: httpx.Response, ok: tuple[int, ...] = (200,)) -> str:
    if reply.status_code in ok:
        return OK
    if reply.status_code == 503:
        body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("status") == 503 and isinstance(error.get("message"), str):
            return SHAPED_503
    return f"{reply.status_code} {reply.headers.get('content-type')} {reply.text[:200]}"


def guarded(call: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        try:
            return call()
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            return NO_CONNECTION
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            return UNAVAILABLE if code == grpc.StatusCode.UNAVAILABLE else f"gRPC {code}: {err.details()}"  # type: ignore[attr-defined]

    return run


@dataclass
class Broker:
    """The private tansu broker behind its proxy: what clients reach is `bootstrap`, always."""

    procs: ProcessTable
    run_dir: Path
    port: int
    proxy: Proxy

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def start(self) -> None:
        """Start the broker and declare the registry's topics before any other client reaches it.

        As in production, where the topics exist before a client connects (Strimzi declares
        them). The memory-only broker was seen to lose a record produced by a client that came
        back with it while the topics were being declared: the produce was acknowledged, the
        partition's end stayed at 0 (no consumer ever saw the record), and the next produce to
        that partition failed with tansu's `AlreadyExists ... 00000000000000000000.batch`. So
        until the declarations are done, every connection but the declaring admin's is held at
        its first request, then dropped; the clients connect again to a broker that has every
        topic.
        """
        gate = self.proxy.arm(
            Trap(lambda frame: ADMIN_CLIENT_ID.encode() not in frame, hold="request", once=False)
        )
        try:
            datatier.start_kafka(self.run_dir, self.procs, self.port, advertised_port=self.proxy.port)
        finally:
            self.proxy.release(gate)

    def kill(self) -> None:
        """SIGKILL: a crash, with everything the memory-only broker held."""
        started = self.procs.get("kafka")
        assert started is not None and started.alive()
        self.procs.stop("kafka", sig=signal.SIGKILL)
        self.proxy.drop_all()

    def partitions(self, topic: str) -> list[int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            return sorted(consumer.partitions_for_topic(topic) or ())
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offset per partition (0 where it committed none)."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in self.partitions(topic)}
        finally:
            consumer.close()

    def records(self, topic: str) -> list[ConsumerRecord]:
        """Every message on `topic` from the start, read outside any group."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000
        )
        try:
            partitions = [TopicPartition(topic, p) for p in self.partitions(topic)]
            consumer.assign(partitions)
            for partition in partitions:
                consumer.seek(partition, 0)
            return list(consumer)
        finally:
            consumer.close()


@dataclass
class FaultMesh:
    """The running fault mesh and the levers its tests pull."""

    mesh: mesh.Mesh
    procs: ProcessTable
    broker: Broker
    redis_proxy: Proxy
    real_redis_url: str
    pg_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.mesh.layout.run_dir

    def started(self, name: str) -> Started:
        started = self.procs.get(name)
        assert started is not None, f"{name} is not recorded"
        return started

    @contextlib.contextmanager
    def held_down(self, name: str) -> Iterator[None]:
        """While inside, the supervisor does not start `name` again when it exits (its program is
        taken back); afterwards it is handed back, and the supervisor starts it."""
        spec = supervisor.spec_dir(self.run_dir) / f"{name}.json"
        saved = spec.read_text()
        supervisor.release(self.run_dir, name)
        try:
            yield
        finally:
            staging = spec.with_name(f".{spec.name}.tmp")
            staging.write_text(saved)
            staging.replace(spec)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> Started:
        """Signal the recorded process `name`; returns it as it was."""
        victim = self.started(name)
        assert victim.alive(), f"{name} was not running"
        os.kill(victim.pid, sig)
        return victim

    def wait_dead(self, victim: Started, within: float = 30.0) -> None:
        until(lambda: not victim.alive(), f"{victim.name} (pid {victim.pid}) to exit", within)

    def wait_restarted(self, victim: Started, within: float = 60.0) -> Started:
        """The process the supervisor started in place of `victim`, once it answers its health check."""

        def replaced() -> Started | None:
            now = self.procs.get(victim.name)
            return now if now is not None and now.pid != victim.pid and now.alive() else None

        restarted: Started = until(replaced, f"the supervisor to restart {victim.name}", within)
        until(lambda: self.serving(victim.name), f"{victim.name} to serve again", within)
        return restarted

    def serving(self, name: str) -> bool:
        if name == "envoy":
            return datatier.http_ok(f"http://127.0.0.1:{self.mesh.layout.envoy_admin_port}/ready")
        port = self.mesh.layout.internal_ports.get(name, self.mesh.layout.ports[name])
        if not services.get(name).grpc:
            return datatier.http_ok(f"http://127.0.0.1:{port}/healthz")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    def sql(self, statement: str, *params: object) -> list[tuple]:
        """One statement on the fault mesh's database, autocommitted."""
        with psycopg.connect(datatier.libpq_url(self.mesh.database_url), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    def scalar(self, statement: str, *params: object) -> object:
        rows = self.sql(statement, *params)
        return rows[0][0] if rows else None

    def stop_postgres(self) -> None:
        """A fast shutdown of the private PostgreSQL (every session ends, as in a restart)."""
        datatier.stop_postgres(self.procs)

    def start_postgres(self) -> None:
        """The same server again, on the same data directory and socket: the services' URL holds."""
        database = self.mesh.database_url.split("?", 1)[0].rsplit("/", 1)[1]
        url = datatier.start_postgres(self.pg_dir, self.procs, database, private=True)
        assert url == self.mesh.database_url, (url, self.mesh.database_url)

    def redis(self) -> redis.Redis:
        """The real Redis, not through the proxy."""
        return redis.Redis.from_url(self.real_redis_url, decode_responses=True)

    def envoy_healthy(self) -> bool:
        """Envoy sees every upstream cluster healthy again."""
        return mesh.envoy_sees_all_healthy(self.mesh)


def wait_all_healthy(fm: FaultMesh) -> None:
    names = [*services.PROCESSES, "envoy", supervisor.NAME]
    until(lambda: all(fm.started(n).alive() for n in names), "every process to run", 60)
    until(lambda: all(fm.serving(n) for n in [*services.PROCESSES, "envoy"]), "every process to serve", 60)
    until(fm.envoy_healthy, "Envoy to see every cluster healthy", 60)


@dataclass
class Probe:
    """One route called again and again: its name, what it needs, and the call."""

    name: str
    needs: frozenset[str]
    call: Callable[[], str]


@dataclass
class Load:
    """Probes called round-robin by two threads; every outcome recorded with the time its call
    was sent, so a call sent while a process was down counts as during the fault even when its
    answer arrives after every route answered again."""

    probes: list[Probe]
    records: list[tuple[float, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for offset in range(2):
            thread = threading.Thread(target=self._run, args=(offset,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            probe = self.probes[i % len(self.probes)]
            sent = time.monotonic()
            outcome = guarded(probe.call)()
            self.records.append((sent, probe.name, outcome))
            i += 1

    def since(self, start: float, end: float = float("inf")) -> list[tuple[float, str, str]]:
        return [r for r in list(self.records) if start <= r[0] < end]

    def last_ok(self, names: set[str]) -> bool:
        latest: dict[str, tuple[float, str]] = {}
        for sent, name, outcome in list(self.records):
            if sent >= latest.get(name, (float("-inf"), ""))[0]:
                latest[name] = (sent, outcome)
        return all(latest.get(name, (0.0, ""))[1] == OK for name in names)
