"""Batch jobs over the stream-count projection (run by a scheduler, e.g. a k8s CronJob, never per request).

    python -m catalog_svc.jobs monthly-listeners [--window-days 28]   # listeners, then popularity
    python -m catalog_svc.jobs purge-write-requests [--hours 24]      # expire idempotency keys

Monthly listeners: distinct users per artist whose latest stream of that artist falls in the
last 28 days (artist_listeners keeps one row per artist and user, so this is a count).

Popularity (0..100) is relative and log-scaled, like Spotify's: a track's streams in the window
against the catalog's most streamed track; an album takes its best track's; an artist's comes
from monthly listeners against the artist with the most. Entities that have never been streamed
keep the popularity they were created or imported with (the demo and benchmark catalogs seed it);
once streamed, the projection owns the value and it decays to 0 when the streams stop.

The same run drops applied streams a day past the window once they are older than the topic's
retention too: the table is both the consumer's dedup record and the popularity window, and a
row that neither can use again is dead weight.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sqlalchemy import create_engine

from catalog_svc import streams
from catalog_svc.stream_store import StreamStore
from catalog_svc.write_store import purge_write_requests
from meshkit.db import normalize_url
from meshkit.jobs import Summary, run_job
from meshkit.migrate import database_url_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog_svc.jobs", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    listeners = commands.add_parser("monthly-listeners", help="monthly listeners and popularity")
    listeners.add_argument("--window-days", type=int, default=streams.WINDOW_DAYS)
    purge = commands.add_parser("purge-write-requests", help="expire write idempotency keys")
    purge.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)

    url = normalize_url(args.url or database_url_from_env())
    if args.command == "monthly-listeners":
        return run_job("catalog_svc", "monthly-listeners", lambda: _monthly_listeners(url, args.window_days))
    return run_job("catalog_svc", "purge-write-requests", lambda: _purge(url, args.hours))


def _monthly_listeners(url: str, window_days: int) -> Summary:
    engine = create_engine(url)
    try:
        return dataclasses.asdict(streams.recompute(StreamStore(engine), window_days=window_days))
    finally:
        engine.dispose()


def _purge(url: str, hours: int) -> Summary:
    engine = create_engine(url)
    try:
        return {"write_request_keys_purged": purge_write_requests(engine, hours=hours)}
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
