"""Paging rules shared by every list RPC: Spotify's limit/offset and AIP's page_size/page_token.

Spotify clients send `limit` and `offset` and follow the `next`/`previous` URLs of the paging
object; gRPC callers may use `page_size`/`page_token` instead. Both describe the same window,
so they resolve to one `Window`, and the page token is simply the offset as text (the catalog
is small and ordered deterministically, so an offset is a stable enough cursor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from meshkit.errors import InvalidArgument

DEFAULT_LIMIT = 20
MAX_LIMIT = 50


@dataclass(frozen=True)
class Window:
    """Which slice of a list to return."""

    limit: int
    offset: int
    max_offset: int | None = None  # the furthest offset the list accepts (search: 1,000)


def resolve(
    *,
    limit: int = 0,
    offset: int = 0,
    page_size: int = 0,
    page_token: str = "",
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
    max_offset: int | None = None,
) -> Window:
    """The window a request asks for; INVALID_ARGUMENT for values Spotify would reject.

    `limit` wins over `page_size` (proto3 cannot tell an unset limit from 0, so 0 means "not
    given"); `page_token`, when present, wins over `offset`.
    """
    if limit < 0 or limit > max_limit:
        raise InvalidArgument(f"limit must be between 1 and {max_limit}, got {limit}")
    if page_size < 0 or page_size > max_limit:
        raise InvalidArgument(f"page_size must be between 1 and {max_limit}, got {page_size}")
    size = limit or page_size or default_limit
    if offset < 0:
        raise InvalidArgument(f"offset must be 0 or more, got {offset}")
    start = offset
    if page_token:
        if not page_token.isdigit() or len(page_token) > 9:
            raise InvalidArgument(f"invalid page_token {page_token!r}")
        start = int(page_token)
    if max_offset is not None and start > max_offset:
        raise InvalidArgument(f"offset must be at most {max_offset}, got {start}")
    return Window(limit=size, offset=start, max_offset=max_offset)


@dataclass(frozen=True)
class PageLinks:
    """The navigation fields of a paging object."""

    href: str
    next: str
    previous: str
    next_page_token: str


def links(base_url: str, window: Window, total: int, params: Mapping[str, str] | None = None) -> PageLinks:
    """Absolute `href`/`next`/`previous` URLs for `window` of a `total`-item list at `base_url`.

    `params` are the list's other query parameters (q, type, include_groups, ...): they go into
    every link so that following `next` continues the same list.
    """
    extra = {key: value for key, value in (params or {}).items() if value}

    def url(offset: int) -> str:
        query = urlencode({**extra, "offset": offset, "limit": window.limit})
        return f"{base_url}?{query}"

    following = window.offset + window.limit
    has_next = following < total and (window.max_offset is None or following <= window.max_offset)
    has_previous = window.offset > 0
    return PageLinks(
        href=url(window.offset),
        next=url(following) if has_next else "",
        previous=url(max(0, window.offset - window.limit)) if has_previous else "",
        next_page_token=str(following) if has_next else "",
    )
