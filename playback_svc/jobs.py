"""playback_svc's batch jobs (run by a scheduler, e.g. a k8s CronJob, never per request).

    python -m playback_svc.jobs purge-outbox [--days 8]   # published outbox rows older than that

The relay stamps each outbox row when Kafka acknowledged it and keeps it for inspection; after
the topic's retention (7 days) plus a day nothing can ask for it again, so the table keeps about
a week of events instead of every event ever counted.
"""

from __future__ import annotations

import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit.jobs import Purge, Summary, retention_main
from playback_svc.counter.store import purge_published_outbox

# The playback topics' retention (k8s/overlays/prod/kafka.yaml) plus a day.
DEFAULT_DAYS = 8


async def _purge(engine: AsyncEngine, days: int) -> Summary:
    return {"outbox_rows_purged": await purge_published_outbox(engine, days=days)}


PURGES = [
    Purge(
        "purge-outbox",
        "delete published outbox rows older than --days",
        "purge-playback-outbox",
        DEFAULT_DAYS,
        _purge,
    )
]


def main(argv: list[str] | None = None) -> int:
    return retention_main("playback_svc", __doc__, PURGES, argv)


if __name__ == "__main__":
    sys.exit(main())
