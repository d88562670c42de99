"""Recently played (Spotify "Get Recently Played Tracks") from ``playback.listening_history``.

Spotify pages this list with millisecond cursors: ``before`` walks back in time, ``after``
forward, and only one may be given. Both are supported, plus an AIP ``page_token`` that is exact
even when two plays share a millisecond (it carries the row's full timestamp and id).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from spotify.common.v1 import common_pb2
from spotify.playback.v1 import playback_pb2
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meshkit import ids
from meshkit.errors import InvalidArgument
from playback_svc.catalog import CatalogClient
from playback_svc.models import ListeningHistory
from playback_svc.objects import context_object, millis, rfc3339

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
_TOKEN_VERSION = "h1"


def encode_token(played_at: datetime, row_id: int) -> str:
    raw = f"{_TOKEN_VERSION}:{int(played_at.timestamp() * 1_000_000)}:{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        version, micros, row_id = raw.split(":")
        if version != _TOKEN_VERSION:
            raise ValueError(version)
        return datetime.fromtimestamp(int(micros) / 1_000_000, UTC), int(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token is not valid") from exc


def _from_ms(value: int, name: str) -> datetime:
    if value < 0 or value > 32_503_680_000_000:  # year 3000
        raise InvalidArgument(f"{name} must be a unix time in milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


class History:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], catalog: CatalogClient, public_base_url: str
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.base = public_base_url.rstrip("/")

    async def recently_played(
        self, user_id: uuid.UUID, request: playback_pb2.ListRecentlyPlayedRequest
    ) -> playback_pb2.PlayHistoryCursorPage:
        limit = request.limit or request.page_size or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit must be between 1 and {MAX_LIMIT}")
        if request.after and request.before:
            raise InvalidArgument("give only one of after and before")
        forward = bool(request.after) and not request.page_token
        played_ms = func.date_trunc("milliseconds", ListeningHistory.played_at)
        query = select(ListeningHistory).where(ListeningHistory.user_id == user_id)
        if request.page_token:
            at, row_id = decode_token(request.page_token)
            query = query.where(tuple_(ListeningHistory.played_at, ListeningHistory.id) < tuple_(at, row_id))
        elif request.before:
            query = query.where(played_ms < _from_ms(request.before, "before"))
        elif request.after:
            query = query.where(played_ms > _from_ms(request.after, "after"))
        if forward:
            query = query.order_by(ListeningHistory.played_at, ListeningHistory.id)
        else:
            query = query.order_by(ListeningHistory.played_at.desc(), ListeningHistory.id.desc())
        async with self.sessions() as session:
            found = list((await session.scalars(query.limit(limit + 1))).all())
            total = await session.scalar(
                select(func.count()).select_from(ListeningHistory).where(ListeningHistory.user_id == user_id)
            )
        more = len(found) > limit
        found = found[:limit]
        if forward:
            found.reverse()  # the page is the `limit` plays right after the cursor, newest first
        tracks = await self.catalog.tracks(ids.encode(row.track_id) for row in found)

        page = playback_pb2.PlayHistoryCursorPage(
            href=self._href(limit, after=request.after, before=request.before),
            limit=limit,
            total=int(total or 0),
        )
        for row in found:
            item = page.items.add(played_at=rfc3339(row.played_at))
            track = tracks.get(ids.encode(row.track_id))
            if track is not None:
                item.track.CopyFrom(track)
            context = context_object(self.base, row.context_uri) if row.context_uri else None
            if context is not None:
                item.context.CopyFrom(context)
        if found:
            newest, oldest = found[0], found[-1]
            page.cursors.CopyFrom(
                common_pb2.Cursors(after=str(millis(newest.played_at)), before=str(millis(oldest.played_at)))
            )
            if more and not forward:
                page.next = self._href(limit, before=millis(oldest.played_at))
                page.next_page_token = encode_token(oldest.played_at, oldest.id)
            elif more:
                page.next = self._href(limit, after=millis(newest.played_at))
        return page

    def _href(self, limit: int, *, after: int = 0, before: int = 0) -> str:
        params: dict[str, int] = {"limit": limit}
        if after:
            params["after"] = after
        if before:
            params["before"] = before
        return f"{self.base}/v1/me/player/recently-played?{urlencode(params)}"
