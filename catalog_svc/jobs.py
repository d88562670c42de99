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
"""

from __future__ import annotations

import argparse
import logging
import sys

from sqlalchemy import create_engine

from catalog_svc import streams
from catalog_svc.stream_store import StreamStore
from catalog_svc.write_store import purge_write_requests
from meshkit.migrate import database_url_from_env, normalize_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog_svc.jobs", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    listeners = commands.add_parser("monthly-listeners", help="monthly listeners and popularity")
    listeners.add_argument("--window-days", type=int, default=streams.WINDOW_DAYS)
    purge = commands.add_parser("purge-write-requests", help="expire write idempotency keys")
    purge.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = create_engine(normalize_url(args.url or database_url_from_env()))
    try:
        if args.command == "monthly-listeners":
            stats = streams.recompute(StreamStore(engine), window_days=args.window_days)
            print(
                f"monthly listeners updated for {stats.artists_listeners} artists; popularity updated for "
                f"{stats.tracks} tracks, {stats.albums} albums, {stats.artists_popularity} artists"
            )
        else:
            print(f"purged {purge_write_requests(engine, hours=args.hours)} write request keys")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
