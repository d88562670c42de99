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
import datetime as dt
import logging
import sys
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text

from meshkit.migrate import database_url_from_env, normalize_url

log = logging.getLogger(__name__)

WINDOW_DAYS = 28


@dataclass(frozen=True)
class ProjectionStats:
    artists_listeners: int
    tracks: int
    albums: int
    artists_popularity: int


_MONTHLY_LISTENERS = text(
    """
    WITH counts AS (
        SELECT a.id, count(l.user_id) AS n
        FROM catalog.artists a
        LEFT JOIN catalog.artist_listeners l ON l.artist_id = a.id AND l.last_streamed_at >= :since
        GROUP BY a.id
    )
    UPDATE catalog.artists a SET monthly_listeners = counts.n
    FROM counts WHERE a.id = counts.id AND a.monthly_listeners <> counts.n
    """
)

_TRACK_POPULARITY = text(
    """
    WITH recent AS (
        SELECT track_id, count(*) AS n FROM catalog.applied_stream_events
        WHERE counted_at >= :since GROUP BY track_id
    ),
    top AS (SELECT greatest(max(n), 1) AS n FROM recent),
    scored AS (
        SELECT t.id,
               CAST(round(100 * ln(1 + coalesce(r.n, 0)) / ln(1 + top.n)) AS smallint) AS popularity
        FROM catalog.tracks t CROSS JOIN top LEFT JOIN recent r ON r.track_id = t.id
        WHERE t.stream_count > 0
    )
    UPDATE catalog.tracks t SET popularity = least(100, scored.popularity)
    FROM scored WHERE t.id = scored.id AND t.popularity <> least(100, scored.popularity)
    """
)

_ALBUM_POPULARITY = text(
    """
    WITH best AS (
        SELECT album_id, max(popularity) AS popularity FROM catalog.tracks
        WHERE album_id IN (SELECT album_id FROM catalog.tracks WHERE stream_count > 0)
        GROUP BY album_id
    )
    UPDATE catalog.albums al SET popularity = best.popularity
    FROM best WHERE al.id = best.album_id AND al.popularity <> best.popularity
    """
)

_ARTIST_POPULARITY = text(
    """
    WITH top AS (SELECT greatest(max(monthly_listeners), 1) AS n FROM catalog.artists),
    scored AS (
        SELECT a.id,
               CAST(round(100 * ln(1 + a.monthly_listeners) / ln(1 + top.n)) AS smallint) AS popularity
        FROM catalog.artists a CROSS JOIN top
        WHERE EXISTS (SELECT 1 FROM catalog.artist_listeners l WHERE l.artist_id = a.id)
    )
    UPDATE catalog.artists a SET popularity = least(100, scored.popularity)
    FROM scored WHERE a.id = scored.id AND a.popularity <> least(100, scored.popularity)
    """
)


def recompute_projection(
    engine: Engine, *, now: dt.datetime | None = None, window_days: int = WINDOW_DAYS
) -> ProjectionStats:
    """Monthly listeners, then track, album and artist popularity, in one transaction."""
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=window_days)
    with engine.begin() as conn:
        listeners = conn.execute(_MONTHLY_LISTENERS, {"since": since}).rowcount
        tracks = conn.execute(_TRACK_POPULARITY, {"since": since}).rowcount
        albums = conn.execute(_ALBUM_POPULARITY).rowcount
        artists = conn.execute(_ARTIST_POPULARITY).rowcount
    stats = ProjectionStats(listeners, tracks, albums, artists)
    log.info("projection recomputed", extra={"window_days": window_days, **stats.__dict__})
    return stats


def purge_write_requests(engine: Engine, *, hours: int = 24) -> int:
    """Forget idempotency keys older than `hours`: a retry after that is a new request."""
    with engine.begin() as conn:
        return conn.execute(
            text("DELETE FROM catalog.write_requests WHERE created_at < now() - make_interval(hours => :h)"),
            {"h": hours},
        ).rowcount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog_svc.jobs", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    listeners = commands.add_parser("monthly-listeners", help="monthly listeners and popularity")
    listeners.add_argument("--window-days", type=int, default=WINDOW_DAYS)
    purge = commands.add_parser("purge-write-requests", help="expire write idempotency keys")
    purge.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = create_engine(normalize_url(args.url or database_url_from_env()))
    try:
        if args.command == "monthly-listeners":
            stats = recompute_projection(engine, window_days=args.window_days)
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
