"""Reading credentials and the client address from request headers (HTTP) or gRPC metadata.

The same rules serve ext_authz (Envoy's CheckRequest carries the HTTP headers) and the
servicer (Logout needs the token Envoy forwarded as metadata), so they live here once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grpc import aio

SESSION_COOKIE = "session"


@dataclass(frozen=True)
class Credentials:
    """The session token a request carries, and how it came."""

    token: str
    # True when it came in the `session` cookie, which a browser attaches by itself, whichever
    # page made the request (so a write needs the page's origin checked); False for a Bearer token.
    from_cookie: bool = False


def credentials_from_headers(headers: Mapping[str, str]) -> Credentials:
    """`Authorization: Bearer <token>` first, else the `session` cookie; an empty token if neither."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credentials(value.strip())
    # Parsed by hand: http.cookies gives up on the first cookie it dislikes, and browsers send
    # whatever other sites' cookies look like.
    for pair in headers.get("cookie", "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name.strip() == SESSION_COOKIE and value.strip().strip('"'):
            return Credentials(value.strip().strip('"'), from_cookie=True)
    return Credentials("")


def token_from_headers(headers: Mapping[str, str]) -> str:
    """The session token (see credentials_from_headers)."""
    return credentials_from_headers(headers).token


def page_origin(headers: Mapping[str, str]) -> str | None:
    """The origin of the page that made the request, as the browser states it: `Origin`, else the
    `Referer` (sent without Origin by older browsers); None when neither is there (not a browser).

    Browsers set both themselves and no page's script can change them; "null" (a sandboxed or
    privacy-redirected page) is returned as it is, an origin no configuration allows.
    """
    origin = headers.get("origin", "").strip()
    if origin:
        return origin
    referer = headers.get("referer", "").strip()
    return referer or None


def client_ip(headers: Mapping[str, str]) -> str:
    """The client address Envoy saw, or "" when there is none (an internal caller).

    Envoy (use_remote_address) appends the peer it trusts to x-forwarded-for, so the last entry
    is the one no client can forge; x-envoy-external-address, set for non-private peers, agrees.
    """
    candidates = [headers.get("x-envoy-external-address", "")]
    forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if forwarded:
        candidates.append(forwarded[-1])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def metadata_headers(context: aio.ServicerContext) -> dict[str, str]:
    """The invocation metadata as a lower-cased dict of text values."""
    metadata: Iterable[tuple[str, str | bytes]] = context.invocation_metadata() or ()
    return {key.lower(): value for key, value in metadata if isinstance(value, str)}


@dataclass(frozen=True)
class SessionCookie:
    """The `set-cookie` values of a session: HttpOnly, lax, for the whole site."""

    max_age_s: int
    # Adds `Secure`: on wherever clients reach Envoy over HTTPS.
    secure: bool

    def issue(self, token: str) -> str:
        return self._value(token, self.max_age_s)

    def clear(self) -> str:
        """A cookie that replaces the session's and expires at once."""
        return self._value("", 0)

    def _value(self, token: str, max_age_s: int) -> str:
        parts = [f"{SESSION_COOKIE}={token}", "HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={max_age_s}"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)
