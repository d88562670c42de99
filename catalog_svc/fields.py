"""Rules for the query parameters of catalog reads that are not paging: market, include_groups."""

from __future__ import annotations

import re

from catalog_svc.store import ALBUM_GROUPS
from meshkit.errors import InvalidArgument

_MARKET = re.compile(r"^[A-Z]{2}$")


def market(value: str) -> str:
    """The `market` parameter: '' (none given) or an ISO 3166-1 alpha-2 code, upper-cased.

    "from_token" (Spotify: the user's country) is treated as no market: the catalog does not
    know the caller's country.
    """
    if not value or value == "from_token":
        return ""
    code = value.strip().upper()
    if not _MARKET.match(code):
        raise InvalidArgument(f"market: an ISO 3166-1 alpha-2 country code, got {value!r}")
    return code


def include_groups(value: str) -> tuple[str, ...]:
    """Spotify's `include_groups` (comma list of album, single, appears_on, compilation); all when empty."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not names:
        return ALBUM_GROUPS
    unknown = sorted({name for name in names if name not in ALBUM_GROUPS})
    if unknown:
        raise InvalidArgument(
            f"include_groups: unknown {', '.join(unknown)}; valid groups are {', '.join(ALBUM_GROUPS)}"
        )
    return tuple(group for group in ALBUM_GROUPS if group in names)
