"""Envoy's external authorization (`envoy.service.auth.v3.Authorization/Check`).

Envoy asks before routing any request that needs a session (every route but health, media and
unknown paths, which the Envoy routes exempt); for register and login, which need none, it asks
only whether the page's origin may sign in (see below). A live session lets the request
through with `x-user-id`, `x-user-roles`, `x-user-product` (and `x-user-country`) added, which
the services trust because Envoy strips those headers from every client request first. Anything
else is a 401 in Spotify's error shape for JSON clients, or plain UNAUTHENTICATED for native gRPC
ones.

A write authenticated only by the session cookie must come from a page of an allowed origin (the
edge's own, and those the Envoy render passes as the `allowed_origins` context extension, which
are also its CORS origins): a browser attaches the cookie to requests any page makes, and
SameSite=Lax still lets sibling sites (another port or subdomain) send it. Anything else is a 403
before the session is even looked up. Bearer tokens are never attached by a browser on its own,
so they need no such check; reads change nothing, and CORS keeps their answers from other pages.
Register and login are refused from such pages too, cookie or not: a forged login would put the
forger's session cookie in the visitor's browser.

The route's rate limit is decided here too, in the same call: a route of a category in
auth_svc/ratelimits.toml names it in the `ratelimit` context extension, and the request is
counted (for the session's user, or for the client address) once it is otherwise admitted. Over
the limit is a 429 with `retry-after` (RESOURCE_EXHAUSTED for gRPC clients, which would retry
UNAVAILABLE); every answer of a limited route carries `x-ratelimit-limit/-remaining/-reset`.
One call instead of a second one to a rate-limit service saves a Python hop per request.

Envoy runs this after the JSON transcoder, so the request path is always the gRPC method.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

from envoyapi.envoy.config.core.v3 import base_pb2
from envoyapi.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoyapi.envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2
from grpc import aio

from auth_svc import rules
from auth_svc.credentials import credentials_from_headers, page_origin
from auth_svc.limits import CLIENT_ADDRESS_HEADER, CONTEXT_KEY
from auth_svc.ratelimit import ALLOWED, RateLimiter, Verdict
from auth_svc.ratelimit_store import Decision
from auth_svc.session_store import Session
from auth_svc.sessions import Sessions
from meshkit import ids, services
from meshkit.context import USER_COUNTRY_KEY, USER_ID_KEY, USER_PRODUCT_KEY, USER_ROLES_KEY

NO_TOKEN = "No token provided"
BAD_TOKEN = "Invalid access token: the session expired or was closed"
CROSS_SITE = (
    "Cross-site request refused: the session cookie is accepted for changes only from this site's "
    "own pages; other clients send the token as Authorization: Bearer"
)
CROSS_SITE_SIGN_IN = "Cross-site request refused: sign-in is accepted only from this site's own pages"
RATE_LIMITED = "API rate limit exceeded"
LIMITER_DOWN = "Rate limiting is unavailable; retry shortly"
# The context extension that carries the configured origins (space-separated).
ALLOWED_ORIGINS_KEY = "allowed_origins"
# The context extension of routes that need no session (register, login): only the origin is checked.
SESSION_KEY = "session"
NO_SESSION = "none"
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def is_native_grpc(headers: Mapping[str, str]) -> bool:
    """A gRPC client's request, as opposed to a JSON one the transcoder turned into gRPC.

    After transcoding both carry `content-type: application/grpc`; only the transcoded one has
    the `x-envoy-original-path` the transcoder leaves behind.
    """
    return headers.get("content-type", "").startswith("application/grpc") and (
        "x-envoy-original-path" not in headers
    )


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
    )


_CODES = {
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def denied(
    status: int,
    message: str,
    headers: Mapping[str, str],
    extra: list[base_pb2.HeaderValueOption] | None = None,
) -> external_auth_pb2.CheckResponse:
    """A refusal: Spotify's error JSON for HTTP clients, the bare message for gRPC ones."""
    code = _CODES[status]
    response_headers = [_header("www-authenticate", 'Bearer realm="spotify"')] if status == 401 else []
    response_headers.extend(extra or ())
    if is_native_grpc(headers):
        body = message  # Envoy turns it into grpc-message
        # Envoy derives grpc-status from the HTTP status unless one is set: 429 would become
        # UNAVAILABLE, which gRPC clients retry at once.
        response_headers.append(_header("grpc-status", str(code)))
    else:
        body = json.dumps({"error": {"status": status, "message": message}}, separators=(",", ":"))
        response_headers.append(_header("content-type", "application/json"))
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code, message=message),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=status), headers=response_headers, body=body
        ),
    )


def _window_headers(decision: Decision | None, retry_after_s: int | None) -> list[base_pb2.HeaderValueOption]:
    """`x-ratelimit-*` (Envoy's own cannot say "15 minutes") and, when refused, `retry-after`."""
    headers = []
    if decision is not None:
        headers = [
            _header("x-ratelimit-limit", str(decision.limit)),
            _header("x-ratelimit-remaining", str(decision.remaining)),
            _header("x-ratelimit-reset", str(decision.reset_s)),
        ]
    if retry_after_s is not None:
        headers.append(_header("retry-after", str(retry_after_s)))
    return headers


@dataclass(frozen=True)
class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):
    """Answered from Redis alone (a session read, and a window count on limited routes), since
    every routed request waits for it."""

    sessions: Sessions
    limiter: RateLimiter
    # The edge's own public URL: its pages may always write with the cookie.
    public_base_url: str

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        http = request.attributes.request.http
        headers = http.headers
        if request.attributes.context_extensions.get(SESSION_KEY) == NO_SESSION:
            refused = self._origin_refusal(request)
            return refused or await self._admit(request, None, [])
        credentials = credentials_from_headers(headers)
        if not credentials.token:
            return denied(401, NO_TOKEN, headers)
        if (
            credentials.from_cookie
            and not services.is_read_only(http.path)
            and rules.cross_site(page_origin(headers), self._allowed(request))
        ):
            return denied(403, CROSS_SITE, headers)
        session = await self.sessions.authorize(credentials.token)
        if session is None:
            return denied(401, BAD_TOKEN, headers)
        identity = [
            _header(USER_ID_KEY, ids.encode(session.user_id)),
            _header(USER_ROLES_KEY, session.roles_header),
            _header(USER_PRODUCT_KEY, session.product),
        ]
        if session.country:
            identity.append(_header(USER_COUNTRY_KEY, session.country))
        return await self._admit(request, session, identity)

    async def _admit(
        self,
        request: external_auth_pb2.CheckRequest,
        session: Session | None,
        identity: list[base_pb2.HeaderValueOption],
    ) -> external_auth_pb2.CheckResponse:
        """Let an authorised request through, once its route's rate limit (if any) admits it."""
        verdict = await self._count(request, session)
        headers = request.attributes.request.http.headers
        window = _window_headers(verdict.decision, verdict.retry_after_s)
        if verdict.outage:
            return denied(503, LIMITER_DOWN, headers, window)
        if not verdict.allowed:
            return denied(429, RATE_LIMITED, headers, window)
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.OK),
            ok_response=external_auth_pb2.OkHttpResponse(headers=identity, response_headers_to_add=window),
        )

    async def _count(self, request: external_auth_pb2.CheckRequest, session: Session | None) -> Verdict:
        category_name = request.attributes.context_extensions.get(CONTEXT_KEY)
        if not category_name:
            return ALLOWED
        return await self.limiter.check(
            category_name,
            user=ids.encode(session.user_id) if session else "",
            address=request.attributes.request.http.headers.get(CLIENT_ADDRESS_HEADER, ""),
        )

    def _origin_refusal(
        self, request: external_auth_pb2.CheckRequest
    ) -> external_auth_pb2.CheckResponse | None:
        """Register and login: any client, with or without a session, except a browser page of a
        foreign origin (login forgery: signing the visitor in to the forger's account, whose
        session cookie then records what they play and save)."""
        headers = request.attributes.request.http.headers
        if rules.cross_site(page_origin(headers), self._allowed(request)):
            return denied(403, CROSS_SITE_SIGN_IN, headers)
        return None

    def _allowed(self, request: external_auth_pb2.CheckRequest) -> frozenset[str]:
        configured = request.attributes.context_extensions.get(ALLOWED_ORIGINS_KEY, "")
        return _allowed_origins(configured, self.public_base_url)


@functools.lru_cache(maxsize=16)
def _allowed_origins(configured: str, public_base_url: str) -> frozenset[str]:
    """Parsed once: every request of a route carries the same string."""
    return rules.allowed_origins(configured.split(), public_base_url)
