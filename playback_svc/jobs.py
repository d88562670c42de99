"""playback_svc's batch jobs (run by a scheduler, e.g. a k8s CronJob, never per request).

    python -m playback_svc.jobs purge-outbox [--days 8]   # published outbox rows older than that

The relay stamps each outbox row when Kafka acknowledged it and keeps it for inspection; after
the topic's retention (7 days) plus a day nothing can ask for it again, so the table keeps about
a week of events instead of every event ever counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from meshkit import db
from meshkit.config import get_settings
from meshkit.jobs import Summary, run_job
from playback_svc.counter.store import purge_published_outbox

# The playback topics' retention (k8s/overlays/prod/kafka.yaml) plus a day.
DEFAULT_DAYS = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playback_svc.jobs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser("purge-outbox", help="delete published outbox rows older than --days")
    purge.add_argument("--days", type=int, default=DEFAULT_DAYS)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    return run_job("playback_svc", "purge-playback-outbox", lambda: asyncio.run(_purge(args.days)))


async def _purge(days: int) -> Summary:
    engine = db.create_engine(get_settings().database_url, pool_size=1)
    try:
        return {"outbox_rows_purged": await purge_published_outbox(engine, days=days)}
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
