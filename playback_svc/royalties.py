"""Royalty reports from the counted streams (one attribution per counted stream and credited
artist, the weights of a stream summing to 1).

* The royalty report (admin): per artist, the streams they are credited on and their pro-rata
  share: the sum of their weights over all streams counted in the period. A stream of a track
  with three artists is one stream for each of them but a third of a stream of share each, so
  the shares of a period add up to 1 (less the streams of tracks without artists).
* Daily streams of one artist, per track: for admins and for the users who manage that artist
  (auth's account says which).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import InvalidArgument, PermissionDenied
from playback_svc.clients import Accounts
from playback_svc.royalties_store import ArtistTotal, DailyCount, RoyaltiesStore

MAX_PERIOD_DAYS = 366
DEFAULT_DAILY_DAYS = 28


@dataclass(frozen=True)
class RoyaltyReport:
    first: dt.date
    last: dt.date
    total_streams: int
    # Largest share first.
    rows: list[ArtistTotal]

    def share(self, row: ArtistTotal) -> float:
        """The artist's pro-rata share of the period's streams."""
        return float(row.weighted) / self.total_streams if self.total_streams else 0.0


@dataclass(frozen=True)
class ArtistDaily:
    artist_id: uuid.UUID
    rows: list[DailyCount]


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
    def __init__(self, store: RoyaltiesStore, accounts: Accounts) -> None:
        self.store = store
        self.accounts = accounts

    async def report(self, caller: Caller, period_start: str, period_end: str) -> RoyaltyReport:
        """Every credited artist's streams and share in a period (admins only)."""
        caller.require_role("admin")
        first, last = period(period_start, period_end)
        totals, total = await self.store.artist_totals(*_bounds(first, last))
        return RoyaltyReport(first, last, total, totals)

    async def artist_daily(self, caller: Caller, artist: str, start: str, end: str) -> ArtistDaily:
        """One artist's streams per day and track (``artist`` an id or URI; the last 28 days by default)."""
        caller.require_user()
        artist_id = ids.parse_id_or_uri(artist, "artist")
        await self._require_manager(caller, artist_id)
        first, last = period(start, end, default_days=DEFAULT_DAILY_DAYS)
        return ArtistDaily(artist_id, await self.store.artist_daily(artist_id, *_bounds(first, last)))

    async def _require_manager(self, caller: Caller, artist_id: uuid.UUID) -> None:
        """Admins see every artist; an artist-role user only the artists auth says they manage."""
        if caller.has_role("admin"):
            return
        if not caller.has_role("artist"):
            raise PermissionDenied("requires role artist or admin")
        if artist_id not in await self.accounts.managed_artists():
            raise PermissionDenied("you can only see the streams of artists you manage")
