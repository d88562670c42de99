"""SQL of the stream-count projection: counted streams in, and the figures derived from them.

Synchronous: the projection runs on the Kafka consumer's own thread (kafka-python is
thread-based) and the batch job in its own process, each with a plain engine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from catalog_svc.models import ErasedUser
from meshkit import tombstones

_APPLY = text(
    """
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:stream_ids AS uuid[]), CAST(:track_ids AS uuid[]),
            CAST(:user_ids AS uuid[]), CAST(:counted_at AS timestamptz[])
        ) AS e(stream_id, track_id, user_id, counted_at)
    ),
    inserted AS (
        INSERT INTO catalog.applied_stream_events (stream_id, track_id, counted_at)
        SELECT stream_id, track_id, counted_at FROM incoming
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING stream_id
    ),
    fresh AS (
        SELECT e.* FROM incoming e JOIN inserted i USING (stream_id)
    ),
    counted AS (
        UPDATE catalog.tracks t SET stream_count = t.stream_count + f.n
        FROM (SELECT track_id, count(*) AS n FROM fresh GROUP BY track_id) f
        WHERE t.id = f.track_id
        RETURNING t.id
    ),
    listener AS (
        SELECT * FROM fresh WHERE user_id <> ALL(CAST(:erased AS uuid[]))
    ),
    credited AS (
        SELECT ta.artist_id, f.user_id, f.counted_at
        FROM listener f JOIN catalog.track_artists ta ON ta.track_id = f.track_id
        UNION ALL
        SELECT al.artist_id, f.user_id, f.counted_at
        FROM listener f
        JOIN catalog.tracks t ON t.id = f.track_id
        JOIN catalog.albums al ON al.id = t.album_id
        WHERE NOT EXISTS (SELECT 1 FROM catalog.track_artists x WHERE x.track_id = f.track_id)
    ),
    listened AS (
        INSERT INTO catalog.artist_listeners (artist_id, user_id, last_streamed_at)
        SELECT artist_id, user_id, max(counted_at) FROM credited GROUP BY artist_id, user_id
        ON CONFLICT (artist_id, user_id) DO UPDATE
        SET last_streamed_at = greatest(catalog.artist_listeners.last_streamed_at, EXCLUDED.last_streamed_at)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted) AS applied
    """
)

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

_PURGE_APPLIED = text(
    """
    DELETE FROM catalog.applied_stream_events
    WHERE coalesce(counted_at, applied_at) < :counted_before
      AND applied_at < now() - make_interval(days => :applied_days)
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


@dataclass(frozen=True)
class CountedStream:
    """What the projection needs from one StreamCountedEvent."""

    stream_id: uuid.UUID
    track_id: uuid.UUID
    user_id: uuid.UUID
    counted_at: dt.datetime


@dataclass(frozen=True)
class ProjectionStats:
    """How many rows the batch job changed, per figure."""

    artists_listeners: int
    tracks: int
    albums: int
    artists_popularity: int
    # applied_stream_events rows dropped: outside the window and past the topic's retention.
    stream_events_purged: int = 0


class StreamStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(self, streams: Sequence[CountedStream]) -> int:
        """Apply `streams` in one transaction; returns how many were new (the rest were replays).

        Stream ids already in applied_stream_events change nothing, and neither does a second
        stream with the same id in this batch (only the first of each id is sent). A stream of a
        user erased here still counts for its track, but makes no listener row
        (meshkit.tombstones): it was counted before the deletion, the listener is gone.
        """
        unique = list({s.stream_id: s for s in reversed(streams)}.values())[::-1]
        if not unique:
            return 0
        params: dict[str, Any] = {
            "stream_ids": [s.stream_id for s in unique],
            "track_ids": [s.track_id for s in unique],
            "user_ids": [s.user_id for s in unique],
            "counted_at": [s.counted_at for s in unique],
        }
        with self.engine.begin() as conn:
            params["erased"] = list(tombstones.erased_sync(conn, ErasedUser, params["user_ids"]))
            return int(conn.execute(_APPLY, params).scalar_one())

    def purge_applied(self, *, counted_before: dt.datetime, applied_days: int) -> int:
        """Drop applied streams counted before `counted_before` (outside every window the
        projection reads) and applied more than `applied_days` ago (older than the topic's
        retention: no broker can deliver them again, so their dedup row guards nothing)."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    _PURGE_APPLIED, {"counted_before": counted_before, "applied_days": applied_days}
                ).rowcount
            )

    def recompute(self, since: dt.datetime) -> ProjectionStats:
        """Monthly listeners (streams since `since`), then track, album and artist popularity, in one
        transaction."""
        with self.engine.begin() as conn:
            listeners = conn.execute(_MONTHLY_LISTENERS, {"since": since}).rowcount
            tracks = conn.execute(_TRACK_POPULARITY, {"since": since}).rowcount
            albums = conn.execute(_ALBUM_POPULARITY).rowcount
            artists = conn.execute(_ARTIST_POPULARITY).rowcount
        return ProjectionStats(listeners, tracks, albums, artists)
