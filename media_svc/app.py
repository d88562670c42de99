"""The media origin as an aiohttp application: signed URL in, byte ranges of a stored file out.

Routes:

* ``GET /healthz`` → ``{"status": "ok"}`` (liveness; the process has no dependencies to check).
* ``GET|HEAD /media/{path}`` → the object ``<storage_root>/<path>`` when the URL's signature
  (``exp``, ``uid``, ``kid``, ``sig``; see :mod:`meshkit.signing`) verifies over the request path.
  ``web.FileResponse`` does the HTTP work: Range/206/416, ``Accept-Ranges``, ``Content-Range``,
  ``ETag``/``Last-Modified``/conditional requests, and streaming from disk with ``sendfile``.
* ``GET|HEAD /app/{path}`` → the web player's bundle (``Settings.web_root``): a file when there
  is one (hashed ``assets/`` cached for a year), else ``index.html`` (the app routes in the page).
  Public, like any site's code: no signature, no session.
* ``GET /metrics`` → Prometheus text format.

Every error is JSON in the Spotify Web API shape, ``{"error": {"status": 403, "message": "..."}}``,
and never carries file bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from meshkit.signing import KeyRing, SignatureError, verify

log = logging.getLogger(__name__)

# Content types by suffix. Set explicitly: the platform's mimetypes table may say
# "application/ogg" or "audio/vorbis" (or nothing) for .ogg.
CONTENT_TYPES: dict[str, str] = {
    ".ogg": "audio/ogg",
    ".json": "application/json",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"
# The web player's files (Vite's output).
WEB_CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# The page may load and call only its own origin (API, media and code all come through the edge).
WEB_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Vite names every file under assets/ by its content hash: a new build gets new names.
IMMUTABLE = "public, max-age=31536000, immutable"
# Bytes read per chunk when sendfile is unavailable (TLS, some platforms): a few Vorbis pages.
CHUNK_SIZE = 256 * 1024
# meshkit.metrics.LATENCY_BUCKETS, not imported: that module registers the gRPC services' metrics
# on the global registry, where this process registers its own http_request_duration_seconds.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

STORAGE_ROOT_KEY: web.AppKey[Path] = web.AppKey("storage_root", Path)
KEYRING_KEY: web.AppKey[KeyRing] = web.AppKey("keyring", KeyRing)
_START_KEY: web.RequestKey[float] = web.RequestKey("media_svc.start", float)

Clock = Callable[[], float]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Metrics:
    """The service's Prometheus metrics, on one registry (a private one per app unless given)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.request_duration = Histogram(
            "http_request_duration_seconds",
            "Duration of HTTP requests in seconds, until the response headers are sent",
            ["method", "route", "status_code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.signature_rejections = Counter(
            "media_signature_rejections_total",
            "Signed media URLs refused, by reason",
            ["reason"],
            registry=registry,
        )


def error_response(status: int, message: str) -> web.Response:
    """A JSON error in the Spotify Web API shape; never cached (the next URL may well work)."""
    return web.json_response(
        {"error": {"status": status, "message": message}},
        status=status,
        headers={hdrs.CACHE_CONTROL: "no-store"},
    )


def content_type_for(path: Path) -> str:
    """The Content-Type for a stored object, by suffix."""
    return CONTENT_TYPES.get(path.suffix.lower(), FALLBACK_CONTENT_TYPE)


class PathRejected(Exception):
    """The requested object path can never name a stored object (traversal, hidden, absolute)."""


def resolve_object(root: Path, rel: str) -> Path | None:
    """Map a request's relative object path to a regular file under ``root``.

    Raises :class:`PathRejected` for paths that try to leave the root or are not plain relative
    paths (``..``, ``.``, empty segments, absolute, backslashes, NUL, hidden names), including via
    a symlink that points outside ``root``. Returns None when the path is acceptable but there is
    no regular file there. Blocking (stat/readlink): call it in an executor.
    """
    if not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
        raise PathRejected("path is not a relative object path")
    if any(not seg or seg.startswith(".") for seg in rel.split("/")):
        raise PathRejected("path segments must not be empty or start with '.'")
    candidate = (root / rel).resolve()
    if not candidate.is_relative_to(root):
        raise PathRejected("path leaves the storage root")
    return candidate if candidate.is_file() else None


def make_app(
    storage_root: Path,
    keyring: KeyRing,
    *,
    clock: Clock = time.time,
    registry: CollectorRegistry | None = None,
    web_root: Path | None = None,
) -> web.Application:
    """Build the media origin.

    ``storage_root`` is the object-storage root (``Settings.storage_root``), ``keyring`` the
    verifying keys (``KeyRing.parse(Settings.media_signing_keys)``). ``clock`` returns unix
    seconds (tests move it). ``registry`` defaults to a fresh one so several apps can live in one
    process; the server passes ``prometheus_client.REGISTRY`` to include process metrics.
    ``web_root``, when given, is the web player's built bundle, served under /app/.
    """
    root = Path(storage_root).resolve()
    site_root = Path(web_root).resolve() if web_root is not None else None
    metrics = _Metrics(registry if registry is not None else CollectorRegistry())

    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_START_KEY] = time.perf_counter()
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(exc.status, exc.reason)
            # Keep headers that belong to the error, e.g. Allow on a 405.
            if allow := exc.headers.get(hdrs.ALLOW):
                response.headers[hdrs.ALLOW] = allow
            return response
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return error_response(500, "internal error")

    async def observe(request: web.Request, response: web.StreamResponse) -> None:
        # on_response_prepare runs once the final status is known (FileResponse settles 200/206/
        # 304/416 only while preparing), i.e. when the headers go out: time to first byte.
        start = request.get(_START_KEY)
        if start is None:
            return
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.request_duration.labels(request.method, route, str(response.status)).observe(
            time.perf_counter() - start
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics_endpoint(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE_LATEST
        return response

    async def media(request: web.Request) -> web.StreamResponse:
        now = clock()
        # The signature covers the decoded request path as the client sent it, so a URL cannot be
        # re-pointed at another file (or quality) without invalidating it.
        try:
            claims = verify(request.path, request.query_string, now=now, keyring=keyring)
        except SignatureError as exc:
            metrics.signature_rejections.labels(exc.reason.value).inc()
            log.info("media URL refused (%s) for %s", exc.reason.value, request.path)
            return error_response(403, f"signed URL rejected: {exc.message}")

        rel = request.match_info["path"]
        loop = asyncio.get_running_loop()
        try:
            file_path = await loop.run_in_executor(None, resolve_object, root, rel)
        except PathRejected as exc:
            log.warning("media path rejected for uid=%s: %r (%s)", claims.user_id, rel, exc)
            return error_response(403, "path not allowed")
        if file_path is None:
            return error_response(404, "object not found")

        # FileResponse streams with sendfile and handles Range/If-Range/ETag itself. If the file
        # vanishes between our stat and its open it answers 404 (empty body), which is still right.
        return web.FileResponse(
            file_path,
            chunk_size=CHUNK_SIZE,
            headers={
                hdrs.CONTENT_TYPE: content_type_for(file_path),
                # Per-user URL, so only the client's own cache may keep it, and no longer than the
                # URL is valid.
                hdrs.CACHE_CONTROL: f"private, max-age={claims.seconds_left(now)}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def web_player(request: web.Request) -> web.StreamResponse:
        assert site_root is not None
        rel = request.match_info.get("path", "")
        file_path = None
        if rel:
            try:
                loop = asyncio.get_running_loop()
                file_path = await loop.run_in_executor(None, resolve_object, site_root, rel)
            except PathRejected:
                return error_response(404, "not found")
        if file_path is not None:
            cache = IMMUTABLE if rel.startswith("assets/") else "no-cache"
            content_type = WEB_CONTENT_TYPES.get(file_path.suffix.lower(), FALLBACK_CONTENT_TYPE)
            return web.FileResponse(
                file_path, headers={hdrs.CONTENT_TYPE: content_type, hdrs.CACHE_CONTROL: cache, **WEB_HEADERS}
            )
        if rel.startswith("assets/"):
            return error_response(404, "not found")  # an old page's asset: never index.html as code
        index = site_root / "index.html"
        if not index.is_file():
            return error_response(503, "the web player is not built (make install builds it)")
        # Any other path is one of the app's own screens: the page routes it.
        page = {hdrs.CONTENT_TYPE: WEB_CONTENT_TYPES[".html"], hdrs.CACHE_CONTROL: "no-cache", **WEB_HEADERS}
        return web.FileResponse(index, headers=page)

    app = web.Application(middlewares=[errors_as_json])
    app[STORAGE_ROOT_KEY] = root
    app[KEYRING_KEY] = keyring
    app.on_response_prepare.append(observe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    # add_get also registers HEAD; FileResponse sends headers only for HEAD.
    app.router.add_get("/media/{path:.*}", media)
    if site_root is not None:
        app.router.add_get("/app/{path:.*}", web_player)
    return app
