"""Offset paging in both dialects the contract speaks: Spotify's limit/offset and AIP page tokens.

The token is just the offset, wrapped so clients treat it as opaque (and so a token can later
carry more without a contract change).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from meshkit.errors import InvalidArgument

_TOKEN_PREFIX = "o:"


@dataclass(frozen=True)
class Window:
    """Which slice of a list one page shows."""

    offset: int
    limit: int


def window(*, limit: int, offset: int, page_size: int, page_token: str, default: int, maximum: int) -> Window:
    """The page asked for: `limit`, else `page_size`, else the default; `page_token` beats `offset`."""
    size = limit or page_size or default
    if not 1 <= size <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}, got {size}")
    start = decode_token(page_token) if page_token else offset
    if start < 0:
        raise InvalidArgument(f"offset must not be negative, got {start}")
    return Window(offset=start, limit=size)


class PagedRequest(Protocol):
    """Any list request of the contract: Spotify's limit/offset and AIP's page_size/page_token."""

    limit: int
    offset: int
    page_size: int
    page_token: str


def request_window(request: PagedRequest, *, default: int, maximum: int) -> Window:
    """`window` over a list request's own paging fields."""
    return window(
        limit=request.limit,
        offset=request.offset,
        page_size=request.page_size,
        page_token=request.page_token,
        default=default,
        maximum=maximum,
    )


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_TOKEN_PREFIX) or not text[len(_TOKEN_PREFIX) :].isdigit():
        raise InvalidArgument("page_token is not a token this service issued")
    return int(text[len(_TOKEN_PREFIX) :])


@dataclass(frozen=True)
class Links:
    """A page's Spotify links (empty where Spotify has null) and the AIP next-page token."""

    href: str
    next: str
    previous: str
    next_page_token: str


def links(base: str, page: Window, total: int, **params: str) -> Links:
    """href/next/previous for `page` of a list of `total` items at `base` (extra query `params` kept)."""

    def url(offset: int) -> str:
        return f"{base}?{urlencode({**params, 'offset': offset, 'limit': page.limit})}"

    has_next = page.offset + page.limit < total
    return Links(
        href=url(page.offset),
        next=url(page.offset + page.limit) if has_next else "",
        previous=url(max(0, page.offset - page.limit)) if page.offset > 0 else "",
        next_page_token=encode_token(page.offset + page.limit) if has_next else "",
    )
