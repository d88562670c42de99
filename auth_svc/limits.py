"""The rate-limit table (auth_svc/ratelimits.toml): categories, limits, windows, scopes, methods.

One file feeds both ends of the edge's rate limiting: meshctl.envoy_config names each listed
method's category in its route's ext_authz context, and ext_authz (auth_svc) looks the limit up
by that name and counts the request. Keeping them together means a category can never exist on
one side only. Pure parsing, no I/O
beyond reading the file, so meshctl can import it without auth_svc's dependencies.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The ext_authz context extension naming a route's category (set by meshctl.envoy_config).
CONTEXT_KEY = "ratelimit"
# Who a category counts: the signed-in user, or the client address Envoy trusts.
SCOPES = ("user", "ip")
# Where ext_authz reads that address: Envoy sets it on every request (replacing any a client sent)
# from the address it trusts, the one its access log records and x-forwarded-for ends with.
CLIENT_ADDRESS_HEADER = "x-mesh-client-address"

DEFAULT_PATH = Path(__file__).with_name("ratelimits.toml")


@dataclass(frozen=True)
class Category:
    """`limit` requests per sliding `window_s` seconds per subject (a user id or a client IP)."""

    name: str
    limit: int
    window_s: int
    scope: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class RateLimitTable:
    categories: dict[str, Category]

    def category_of(self, method_path: str) -> Category | None:
        """The category a gRPC method (`/pkg.Service/Method`) is counted in, if any."""
        for category in self.categories.values():
            if method_path in category.methods:
                return category
        return None


def _category(name: str, raw: dict[str, Any]) -> Category:
    try:
        limit, window_s, scope = int(raw["limit"]), int(raw["window_s"]), str(raw["scope"])
        methods = tuple(str(m) for m in raw.get("methods", ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"rate-limit category {name!r}: needs limit, window_s, scope ({exc})") from exc
    if limit < 1 or window_s < 1:
        raise ValueError(f"rate-limit category {name!r}: limit and window_s must be positive")
    if scope not in SCOPES:
        raise ValueError(f"rate-limit category {name!r}: scope must be one of {sorted(SCOPES)}")
    bad = [m for m in methods if not (m.startswith("/") and m.count("/") == 2)]
    if bad:
        raise ValueError(f"rate-limit category {name!r}: methods must be /pkg.Service/Method, got {bad}")
    return Category(name=name, limit=limit, window_s=window_s, scope=scope, methods=methods)


def parse(text: str) -> RateLimitTable:
    """Parse and check the TOML text (a method may belong to one category only)."""
    data = tomllib.loads(text)
    categories = {name: _category(name, raw) for name, raw in data.get("categories", {}).items()}
    seen: dict[str, str] = {}
    for category in categories.values():
        for method in category.methods:
            if method in seen:
                raise ValueError(
                    f"{method} is in rate-limit categories {seen[method]!r} and {category.name!r}"
                )
            seen[method] = category.name
    return RateLimitTable(categories=categories)


def load(path: Path = DEFAULT_PATH) -> RateLimitTable:
    """Read the table from a file."""
    return parse(Path(path).read_text())
