"""Royalty reports from ``playback.royalty_attributions`` (one row per counted stream and artist,
weights of a stream summing to 1).

* GetRoyaltyReport (admin): per artist, the streams they are credited on and their pro-rata
  share: the sum of their weights over all streams counted in the period. A stream of a track
  with three artists is one stream for each of them but a third of a stream of share each, so
  the shares of a period add up to 1 (less the streams of tracks without artists).
* ListArtistDailyStreams: daily counts per track of one artist, for admins and for the users
  who manage that artist (auth's GetMe ``artist_ids``, asked with the caller's own metadata).
"""

from __future__ import annotations

import datetime as dt
import uuid

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.playback.v1 import playback_pb2
from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import InvalidArgument, PermissionDenied, Unavailable
from playback_svc.models import CountedStream, RoyaltyAttribution

MAX_PERIOD_DAYS = 366
DEFAULT_DAILY_DAYS = 28


def parse_day(text: str, name: str) -> dt.date:
    if len(text) != 10:
        raise InvalidArgument(f"{name} must be a date, YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgument(f"{name} must be a date, YYYY-MM-DD") from exc


def period(start: str, end: str, *, default_days: int | None = None) -> tuple[dt.date, dt.date]:
    """An inclusive period of UTC days, at most a year long; empty bounds default when allowed."""
    today = dt.datetime.now(dt.UTC).date()
    if default_days is not None:
        last = parse_day(end, "end") if end else today
        first = parse_day(start, "start") if start else last - dt.timedelta(days=default_days - 1)
    else:
        if not start or not end:
            raise InvalidArgument("period_start and period_end are required (YYYY-MM-DD)")
        first, last = parse_day(start, "period_start"), parse_day(end, "period_end")
    if last < first:
        raise InvalidArgument("the period ends before it starts")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidArgument(f"a period is at most {MAX_PERIOD_DAYS} days")
    return first, last


def _bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    return start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)


class Royalties:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], auth_channel: aio.Channel) -> None:
        self.sessions = sessions
        self.auth = auth_pb2_grpc.AuthServiceStub(auth_channel)

    async def report(
        self, caller: Caller, request: playback_pb2.GetRoyaltyReportRequest
    ) -> playback_pb2.GetRoyaltyReportResponse:
        caller.require_role("admin")
        first, last = period(request.period_start, request.period_end)
        start, end = _bounds(first, last)
        ra = RoyaltyAttribution
        in_period = (ra.counted_at >= start) & (ra.counted_at < end)
        weighted = func.sum(ra.weight).label("weighted")
        query = (
            select(ra.artist_id, func.count().label("streams"), weighted)
            .where(in_period)
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
        total = int(total or 0)
        return playback_pb2.GetRoyaltyReportResponse(
            period_start=first.isoformat(),
            period_end=last.isoformat(),
            total_streams=total,
            rows=[
                playback_pb2.RoyaltyRow(
                    artist_id=ids.encode(row.artist_id),
                    streams=int(row.streams),
                    share=float(row.weighted) / total if total else 0.0,
                )
                for row in rows
            ],
        )

    async def artist_daily(
        self, caller: Caller, request: playback_pb2.ListArtistDailyStreamsRequest
    ) -> playback_pb2.ListArtistDailyStreamsResponse:
        caller.require_user()
        artist_id = ids.parse_id_or_uri(request.artist_id, "artist")
        await self._require_manager(caller, artist_id)
        first, last = period(request.start, request.end, default_days=DEFAULT_DAILY_DAYS)
        start, end = _bounds(first, last)
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
        return playback_pb2.ListArtistDailyStreamsResponse(
            artist_id=ids.encode(artist_id),
            rows=[
                playback_pb2.DailyStreamRow(
                    date=row.day.isoformat(), track_id=ids.encode(row.track_id), streams=int(row.streams)
                )
                for row in rows
            ],
        )

    async def _require_manager(self, caller: Caller, artist_id: uuid.UUID) -> None:
        """Admins see every artist; an artist-role user only the artists auth says they manage."""
        if caller.has_role("admin"):
            return
        if not caller.has_role("artist"):
            raise PermissionDenied("requires role artist or admin")
        try:
            me = await self.auth.GetMe(auth_pb2.GetMeRequest())
        except aio.AioRpcError as exc:
            raise Unavailable(f"cannot check which artists you manage right now ({exc.code().name})") from exc
        if artist_id not in _artist_ids(me.artist_ids):
            raise PermissionDenied("you can only see the streams of artists you manage")


def _artist_ids(values: list[str]) -> set[uuid.UUID]:
    """auth's artist ids (bare ids or URIs); a malformed one is ignored, never trusted."""
    found = set()
    for value in values:
        try:
            found.add(ids.parse_id_or_uri(value, "artist"))
        except InvalidArgument:
            continue
    return found
