"""Offset paging for every list RPC, in both dialects the contracts speak.

Spotify clients send `limit` and `offset` and follow the `next`/`previous` URLs of the paging
object; gRPC callers may send `page_size` and `page_token` instead and follow
`next_page_token`. Both describe the same window of a deterministically ordered list.

The page token is opaque to clients: today it wraps the offset (`o:<offset>`, URL-safe base64),
so a token can later carry more without a contract change. Lists that page by cursor (play
history, radio) build their own tokens with `encode_token`/`decode_token`'s kind prefix.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from meshkit.errors import InvalidArgument

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# Offsets in a token are at most this many digits (a bigger one is not a token we issued).
_MAX_DIGITS = 9
_OFFSET_KIND = "o"


@dataclass(frozen=True)
class Window:
    """Which slice of a list one page shows."""

    offset: int
    limit: int
    # The furthest offset the list accepts (search stops at 1,000); None for no limit.
    max_offset: int | None = None


def window(
    *,
    limit: int = 0,
    offset: int = 0,
    page_size: int = 0,
    page_token: str = "",
    default: int = DEFAULT_LIMIT,
    maximum: int = MAX_LIMIT,
    max_offset: int | None = None,
) -> Window:
    """The page a request asks for; INVALID_ARGUMENT for values Spotify would reject.

    `limit` wins over `page_size` (proto3 cannot tell an unset limit from 0, so 0 means "not
    given"); `page_token`, when present, wins over `offset`.
    """
    if not 0 <= limit <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}, got {limit}")
    if not 0 <= page_size <= maximum:
        raise InvalidArgument(f"page_size must be between 1 and {maximum}, got {page_size}")
    if offset < 0:
        raise InvalidArgument(f"offset must not be negative, got {offset}")
    start = decode_token(page_token) if page_token else offset
    if max_offset is not None and start > max_offset:
        raise InvalidArgument(f"offset must be at most {max_offset}, got {start}")
    return Window(offset=start, limit=limit or page_size or default, max_offset=max_offset)


class PagedRequest(Protocol):
    """Any offset-paged list request of the contracts."""

    @property
    def limit(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def page_size(self) -> int: ...
    @property
    def page_token(self) -> str: ...


def request_window(
    request: PagedRequest,
    *,
    default: int = DEFAULT_LIMIT,
    maximum: int = MAX_LIMIT,
    max_offset: int | None = None,
) -> Window:
    """`window` over a list request's own paging fields."""
    return window(
        limit=request.limit,
        offset=request.offset,
        page_size=request.page_size,
        page_token=request.page_token,
        default=default,
        maximum=maximum,
        max_offset=max_offset,
    )


def encode_token(value: int | str, kind: str = _OFFSET_KIND) -> str:
    """An opaque page token holding `value` (an offset unless `kind` says otherwise)."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_token_value(token: str, kind: str) -> str:
    """The value a token of `kind` holds; INVALID_ARGUMENT for anything this mesh did not issue."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    found, sep, value = text.partition(":")
    if found != kind or not sep:
        raise InvalidArgument("page_token is not a token this service issued")
    return value


def decode_token(token: str) -> int:
    """The offset an offset token holds."""
    value = decode_token_value(token, _OFFSET_KIND)
    if not value.isdigit() or len(value) > _MAX_DIGITS:
        raise InvalidArgument("page_token is not a token this service issued")
    return int(value)


@dataclass(frozen=True)
class Links:
    """A page's Spotify links (empty where Spotify has null) and the AIP next-page token."""

    href: str
    next: str
    previous: str
    next_page_token: str


def links(base: str, page: Window, total: int, params: Mapping[str, str] | None = None) -> Links:
    """href/next/previous for `page` of a `total`-item list at `base`.

    `params` are the list's other query parameters (q, type, market, ...): the non-empty ones go
    into every link, so that following `next` continues the same list. No `next` points past
    the list's `max_offset`.
    """
    extra = {key: value for key, value in (params or {}).items() if value}

    def url(offset: int) -> str:
        return f"{base}?{urlencode({**extra, 'offset': offset, 'limit': page.limit})}"

    following = page.offset + page.limit
    token = next_page_token(page, total)
    return Links(
        href=url(page.offset),
        next=url(following) if token else "",
        previous=url(max(0, page.offset - page.limit)) if page.offset > 0 else "",
        next_page_token=token,
    )


def next_page_token(page: Window, total: int) -> str:
    """The token of the page after `page` of a `total`-item list; empty on the last page.

    For lists whose answer has no links (gRPC-only ones), the same rule `links` follows.
    """
    following = page.offset + page.limit
    has_next = following < total and (page.max_offset is None or following <= page.max_offset)
    return encode_token(following) if has_next else ""


def page_fields(
    base: str, page: Window, total: int, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fields every offset-paged list message shares (href, next, previous, next_page_token,
    limit, offset, total), to pass into its constructor beside its items."""
    where = links(base, page, total, params)
    return {
        "href": where.href,
        "next": where.next,
        "previous": where.previous,
        "next_page_token": where.next_page_token,
        "limit": page.limit,
        "offset": page.offset,
        "total": total,
    }
