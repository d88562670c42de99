"""What every batch job does around its work: JSON logs, one summary event, and its outcome pushed
to a Prometheus Pushgateway.

A job lives for seconds to minutes, so nothing could scrape it; it pushes instead, once, when it
ends. The push adds to its group (`job`, `service`) rather than replacing it, so a failed run
leaves the last success's timestamp in place: `BatchJobFailed` fires on `batch_job_failed == 1`,
`BatchJobStale` on an old `batch_job_last_success_timestamp_seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit import db
from meshkit.config import get_settings
from meshkit.logs import configure_logging

log = logging.getLogger(__name__)

Summary = Mapping[str, object]


def outcome_registry(duration_s: float, summary: Summary | None) -> CollectorRegistry:
    """The metrics of one run: `summary` None means it failed. Numeric summary fields become
    `batch_job_items{item=...}`, so a dashboard shows what each run processed."""
    registry = CollectorRegistry()
    failed = Gauge("batch_job_failed", "1 when the job's last run failed, else 0", registry=registry)
    failed.set(1 if summary is None else 0)
    Gauge("batch_job_duration_seconds", "Wall time of the job's last run", registry=registry).set(duration_s)
    if summary is None:
        Gauge(
            "batch_job_last_failure_timestamp_seconds",
            "When the job last failed (Unix time)",
            registry=registry,
        ).set_to_current_time()
        return registry
    Gauge(
        "batch_job_last_success_timestamp_seconds",
        "When the job last succeeded (Unix time)",
        registry=registry,
    ).set_to_current_time()
    items = Gauge(
        "batch_job_items", "What the job's last successful run processed", ["item"], registry=registry
    )
    for key, value in summary.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and not key.endswith("_s"):
            items.labels(item=key).set(value)
    return registry


def push(gateway: str, service: str, job: str, registry: CollectorRegistry) -> bool:
    """Best effort: a job that did its work is not failed by an unreachable gateway (the stale
    alert notices a gateway that never hears from it)."""
    try:
        pushadd_to_gateway(gateway, job=job, grouping_key={"service": service}, registry=registry, timeout=5)
    except OSError as exc:
        log.warning("could not push the job's metrics", extra={"gateway": gateway, "error": str(exc)})
        return False
    return True


def run_job(service: str, job: str, work: Callable[[], Summary]) -> int:
    """Run `work` as batch job `job` of `service`; its exit status (1 when it raised, logged with
    the traceback as `job failed`). The summary `work` returns is logged as the `job finished`
    event (under `result`) and pushed as metrics."""
    settings = get_settings()
    configure_logging(service, settings.log_level)
    started = time.monotonic()
    log.info("job started", extra={"job": job})
    summary: Summary | None = None
    try:
        summary = work()
    except Exception:
        log.exception("job failed", extra={"job": job, "duration_s": round(time.monotonic() - started, 3)})
        return 1
    finally:
        duration = time.monotonic() - started
        if settings.pushgateway_url:
            push(settings.pushgateway_url, service, job, outcome_registry(duration, summary))
    log.info("job finished", extra={"job": job, "duration_s": round(duration, 3), "result": dict(summary)})
    return 0


@dataclass(frozen=True)
class Purge:
    """A retention command: `work` deletes what is older than `--days` (at least 1) and says how
    much went, on an engine of the service's database."""

    command: str
    help: str
    job: str
    default_days: int
    work: Callable[[AsyncEngine, int], Awaitable[Summary]]


def retention_main(service: str, doc: str, purges: Sequence[Purge], argv: list[str] | None = None) -> int:
    """`python -m <service>.jobs <command> [--days N]`: parse, then run the command as a job."""
    parser = argparse.ArgumentParser(prog=f"python -m {service}.jobs", description=doc.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for purge in purges:
        command = commands.add_parser(purge.command, help=purge.help)
        command.add_argument("--days", type=int, default=purge.default_days)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    chosen = next(p for p in purges if p.command == args.command)

    async def work() -> Summary:
        engine = db.create_engine(get_settings().database_url, pool_size=1)
        try:
            return await chosen.work(engine, args.days)
        finally:
            await engine.dispose()

    return run_job(service, chosen.job, lambda: asyncio.run(work()))
