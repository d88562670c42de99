"""auth_svc's batch jobs (run by a scheduler, e.g. a k8s CronJob, never per request).

    python -m auth_svc.jobs purge-exports [--days 7]   # data exports finished longer ago than that

A finished export's archive is a copy of a user's data: it is kept long enough to be downloaded
(its link is signed for an hour from each GetDataExport) and then dropped, not kept for ever.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from auth_svc.export_store import ExportStore
from meshkit import db
from meshkit.config import get_settings
from meshkit.jobs import Summary, run_job

DEFAULT_DAYS = 7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_svc.jobs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser("purge-exports", help="delete data exports finished more than --days ago")
    purge.add_argument("--days", type=int, default=DEFAULT_DAYS)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    return run_job("auth_svc", "purge-data-exports", lambda: asyncio.run(_purge(args.days)))


async def _purge(days: int) -> Summary:
    engine = db.create_engine(get_settings().database_url, pool_size=1)
    try:
        return {"exports_purged": await ExportStore(db.session_factory(engine)).purge(days)}
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
