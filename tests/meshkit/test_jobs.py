"""Batch jobs through their real entry points: JSON lines on stdout, and their outcome on a real
Pushgateway (Debian's, from make install), where a failed run keeps the last success's time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshctl import datatier
from meshctl.processes import ProcessTable
from meshkit.config import PROJECT_ROOT
from meshkit.jobs import outcome_registry
from tests.support import until

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


@pytest.fixture(scope="module")
def pushgateway(run_dir: Path, procs: ProcessTable) -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway")
    assert binary, "make install installs Debian's prometheus-pushgateway"
    port = datatier.free_port()
    procs.spawn(
        "test-pushgateway",
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        env={},
        cwd=run_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: datatier.http_ok(f"{url}/-/ready"), "the Pushgateway to be ready", 20, interval=0.2)
        yield url
    finally:
        procs.stop("test-pushgateway")


def run(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT), **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_lines(stdout: str) -> list[dict[str, object]]:
    """Every line must be JSON (nothing else reaches a job's log)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def pushed(gateway: str, job: str) -> dict[str, float]:
    """The samples of `job`'s group on the gateway, by name (and item)."""
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") != job or not sample.name.startswith("batch_job_"):
                continue
            item = sample.labels.get("item")
            found[sample.name + (f"[{item}]" if item else "")] = sample.value
    return found


def test_a_job_logs_json_and_pushes_success_then_failure(pushgateway: str, database_url: str) -> None:
    ok = run(
        "catalog_svc.jobs",
        "purge-write-requests",
        env={"DATABASE_URL": database_url, "PUSHGATEWAY_URL": pushgateway},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = json_lines(ok.stdout)
    assert [line["message"] for line in lines] == ["job started", "job finished"]
    finished = lines[-1]
    assert finished["service"] == "catalog_svc" and finished["job"] == "purge-write-requests"
    assert finished["level"] == "INFO" and finished["version"]
    assert finished["result"] == {"write_request_keys_purged": 0}
    first = pushed(pushgateway, "purge-write-requests")
    assert first["batch_job_failed"] == 0
    assert first["batch_job_items[write_request_keys_purged]"] == 0
    succeeded_at = first["batch_job_last_success_timestamp_seconds"]
    assert succeeded_at > 0

    failed = run(
        "catalog_svc.jobs",
        "purge-write-requests",
        env={"DATABASE_URL": UNREACHABLE_DB, "PUSHGATEWAY_URL": pushgateway},
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stderr == ""  # the traceback is in the JSON line, not loose on stderr
    (error,) = [line for line in json_lines(failed.stdout) if line["level"] == "ERROR"]
    assert error["message"] == "job failed" and "OperationalError" in str(error["exc_info"])
    after = pushed(pushgateway, "purge-write-requests")
    assert after["batch_job_failed"] == 1
    assert after["batch_job_last_failure_timestamp_seconds"] >= succeeded_at
    # The add-push leaves what the failed run did not send: BatchJobStale still knows the success.
    assert after["batch_job_last_success_timestamp_seconds"] == succeeded_at


def test_migrations_log_json_lines(database_url: str) -> None:
    done = run("meshkit.migrate", env={"DATABASE_URL": database_url})  # already at head: a no-op
    assert done.returncode == 0, done.stdout + done.stderr
    lines = json_lines(done.stdout)
    assert {line["service"] for line in lines} == {"migrate"}
    assert lines[-1]["message"] == "job finished" and lines[-1]["result"]["revision"] == "head"


def test_a_job_without_a_gateway_pushes_nothing_and_a_dead_gateway_does_not_fail_it(
    database_url: str,
) -> None:
    dead = f"http://127.0.0.1:{datatier.free_port()}"
    done = run(
        "catalog_svc.jobs",
        "purge-write-requests",
        env={"DATABASE_URL": database_url, "PUSHGATEWAY_URL": dead},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line for line in json_lines(done.stdout) if line["level"] == "WARNING"]
    assert [w["message"] for w in warnings] == ["could not push the job's metrics"]


def test_only_numeric_summary_fields_become_items() -> None:
    registry = outcome_registry(1.5, {"tracks": 3, "version": "v1", "reloaded": True, "build_s": 0.4})
    items = {
        sample.labels["item"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "batch_job_items"
    }
    assert items == {"tracks": 3}
