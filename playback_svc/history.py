"""Recently played (Spotify "Get Recently Played Tracks"): a user's plays, newest first.

Spotify pages this list with millisecond cursors: ``before`` walks back in time, ``after``
forward, and only one may be given. Both are supported, plus an AIP ``page_token`` that is exact
even when two plays share a millisecond (it carries the row's full timestamp and id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from spotify.catalog.v1 import catalog_pb2

from meshkit import ids, paging
from meshkit.errors import InvalidArgument
from playback_svc.clients import Catalog
from playback_svc.history_store import HistoryStore

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
_TOKEN_KIND = "h1"
_LATEST_MS = 32_503_680_000_000  # year 3000


@dataclass(frozen=True)
class Played:
    played_at: datetime
    row_id: int
    # The track as catalog shows it; None when catalog no longer knows it.
    track: catalog_pb2.Track | None
    context_uri: str | None


@dataclass(frozen=True)
class HistoryPage:
    """Plays newest first, and what the page's links need: the request's cursors and whether more follow."""

    plays: list[Played]
    limit: int
    total: int
    after_ms: int
    before_ms: int
    more: bool
    # Walking forward in time (``after``): the next page is newer, not older.
    forward: bool


def cursor_token(played_at: datetime, row_id: int) -> str:
    """The page token of the plays older than this one."""
    return paging.encode_token(f"{int(played_at.timestamp() * 1_000_000)}:{row_id}", _TOKEN_KIND)


def parse_cursor_token(token: str) -> tuple[datetime, int]:
    value = paging.decode_token_value(token, _TOKEN_KIND)
    try:
        micros, row_id = value.split(":")
        return datetime.fromtimestamp(int(micros) / 1_000_000, UTC), int(row_id)
    except ValueError as exc:
        raise InvalidArgument("page_token is not a token this service issued") from exc


def _from_ms(value: int, name: str) -> datetime:
    if value < 0 or value > _LATEST_MS:
        raise InvalidArgument(f"{name} must be a unix time in milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


class History:
    def __init__(self, store: HistoryStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    async def recently_played(
        self, user_id: uuid.UUID, *, limit: int, after_ms: int, before_ms: int, page_token: str
    ) -> HistoryPage:
        """One page of ``user_id``'s plays; ``limit`` 0 means the default."""
        limit = limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit must be between 1 and {MAX_LIMIT}")
        if after_ms and before_ms:
            raise InvalidArgument("give only one of after and before")
        forward = bool(after_ms) and not page_token
        if page_token:
            rows, total = await self.store.plays(
                user_id, limit=limit + 1, older_than=parse_cursor_token(page_token)
            )
        elif before_ms:
            rows, total = await self.store.plays(
                user_id, limit=limit + 1, before=_from_ms(before_ms, "before")
            )
        elif after_ms:
            rows, total = await self.store.plays(user_id, limit=limit + 1, after=_from_ms(after_ms, "after"))
        else:
            rows, total = await self.store.plays(user_id, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        if forward:
            rows.reverse()  # the page is the `limit` plays right after the cursor, newest first
        tracks = await self.catalog.tracks(ids.encode(row.track_id) for row in rows)
        plays = []
        for row in rows:
            track = tracks.get(ids.encode(row.track_id))
            plays.append(
                Played(row.played_at, row.id, track.object if track is not None else None, row.context_uri)
            )
        return HistoryPage(plays, limit, total, after_ms, before_ms, more, forward)
