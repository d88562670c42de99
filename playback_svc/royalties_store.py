"""SQL for royalty reports: aggregates over ``playback.royalty_attributions`` and ``counted_streams``."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Date, cast, func, select

from meshkit.db import SqlStore
from playback_svc.models import CountedStream, RoyaltyAttribution


@dataclass(frozen=True)
class ArtistTotal:
    artist_id: uuid.UUID
    streams: int
    # The sum of the artist's weights: their pro-rata share of those streams.
    weighted: Decimal


@dataclass(frozen=True)
class DailyCount:
    day: dt.date
    track_id: uuid.UUID
    streams: int


class RoyaltiesStore(SqlStore):
    async def artist_totals(self, start: dt.datetime, end: dt.datetime) -> tuple[list[ArtistTotal], int]:
        """Per artist credited in [start, end), largest share first; and the streams counted then."""
        ra = RoyaltyAttribution
        weighted = func.sum(ra.weight).label("weighted")
        query = (
            select(ra.artist_id, func.count().label("streams"), weighted)
            .where((ra.counted_at >= start) & (ra.counted_at < end))
            .group_by(ra.artist_id)
            .order_by(weighted.desc(), ra.artist_id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            total = await session.scalar(
                select(func.count())
                .select_from(CountedStream)
                .where((CountedStream.counted_at >= start) & (CountedStream.counted_at < end))
            )
        totals = [ArtistTotal(row.artist_id, int(row.streams), row.weighted) for row in rows]
        return totals, int(total or 0)

    async def artist_daily(
        self, artist_id: uuid.UUID, start: dt.datetime, end: dt.datetime
    ) -> list[DailyCount]:
        """Streams per UTC day and track of one artist in [start, end), by day then track."""
        ra = RoyaltyAttribution
        day = cast(func.timezone("UTC", ra.counted_at), Date).label("day")
        query = (
            select(day, ra.track_id, func.count().label("streams"))
            .where((ra.artist_id == artist_id) & (ra.counted_at >= start) & (ra.counted_at < end))
            .group_by(day, ra.track_id)
            .order_by(day, ra.track_id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [DailyCount(row.day, row.track_id, int(row.streams)) for row in rows]
