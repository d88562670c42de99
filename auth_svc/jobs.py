"""auth_svc's batch jobs (run by a scheduler, e.g. a k8s CronJob, never per request).

    python -m auth_svc.jobs purge-exports [--days 7]   # data exports finished longer ago than that

A finished export's archive is a copy of a user's data: it is kept long enough to be downloaded
(its link is signed for an hour from each GetDataExport) and then dropped, not kept for ever.
"""

from __future__ import annotations

import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from auth_svc.export_store import ExportStore
from meshkit import db
from meshkit.jobs import Purge, Summary, retention_main


async def _purge(engine: AsyncEngine, days: int) -> Summary:
    return {"exports_purged": await ExportStore(db.session_factory(engine)).purge(days)}


# A week: long enough to download an archive, not so long that copies of users' data pile up.
DEFAULT_DAYS = 7

PURGES = [
    Purge(
        "purge-exports",
        "delete data exports finished more than --days ago",
        "purge-data-exports",
        DEFAULT_DAYS,
        _purge,
    )
]


def main(argv: list[str] | None = None) -> int:
    return retention_main("auth_svc", __doc__, PURGES, argv)


if __name__ == "__main__":
    sys.exit(main())
