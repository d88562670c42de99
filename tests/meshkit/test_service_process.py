"""A real service process: JSON logs carrying the request id, and a clean drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshctl import datatier
from meshkit import ids


def _start_catalog(database_url: str, tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    port = datatier.free_port()
    log_path = tmp_path / "catalog.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "INTERNAL_LISTEN_ADDR": f"127.0.0.1:{datatier.free_port()}",
        "METRICS_PORT": str(datatier.free_port()),
        "SHUTDOWN_GRACE_S": "5",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "catalog_svc"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return proc, port, log_path


def _wait_serving(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise TimeoutError("catalog_svc did not become SERVING")


def test_logs_are_json_with_the_request_id_and_sigterm_drains_cleanly(
    database_url: str, tmp_path: Path
) -> None:
    proc, port, log_path = _start_catalog(database_url, tmp_path)
    try:
        _wait_serving(port)
        unknown = ids.encode(ids.new_id())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.GetTrack(
                    catalog_pb2.GetTrackRequest(id=unknown), metadata=(("x-request-id", "req-e2e-7"),)
                )
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    rpc = [r for r in records if r.get("request_id") == "req-e2e-7"]
    assert rpc, f"no log record carries the request id; log was:\n{log_path.read_text()[-2000:]}"
    assert rpc[-1]["service"] == "catalog_svc"
    assert rpc[-1]["grpc_code"] == "NOT_FOUND"
    assert "trace_id" not in rpc[-1]  # no OTLP endpoint here: no spans, so no made-up trace ids
    assert any(r["message"] == "draining" for r in records)
    assert records[-1]["message"] == "stopped"


@pytest.mark.parametrize("service", ["auth_svc", "library_svc"])
def test_a_service_loads_only_what_it_uses(service: str) -> None:
    """Memory at rest is mostly imported code: a service without a trace exporter must not load
    the tracing SDK or the gRPC instrumentation. (Every service has Kafka work now: each takes
    part in account deletions.)"""
    probe = (
        f"import sys, {service}.server\n"
        "loaded = [m for m in ('opentelemetry.sdk.trace', 'opentelemetry.instrumentation.grpc')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
