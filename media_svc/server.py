"""Run the media origin: ``python -m media_svc``.

Listens on ``LISTEN_ADDR`` (host:port) when set, else on ``Settings.media_addr``. SIGTERM or
SIGINT stops accepting connections and gives in-flight responses ``Settings.shutdown_grace_s``
to finish (a long download is cut after that; the client resumes with a Range request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import prometheus_client
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from media_svc.app import make_app
from meshkit import eventloop
from meshkit.config import Settings, get_settings
from meshkit.logs import configure_logging
from meshkit.secrets import exit_unless_safe, media_signing
from meshkit.services import METRICS_PORTS
from meshkit.signing import KeyRing

log = logging.getLogger(__name__)


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string: it holds the signature, a bearer token."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
        )


def parse_addr(addr: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); an empty host means all interfaces."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must look like host:port, got {addr!r}")
    host = host.removeprefix("[").removesuffix("]")
    return host or "0.0.0.0", int(port)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_grace_s: float = 10.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until ``stop`` is set (or SIGTERM/SIGINT arrives), then shut down gracefully."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=shutdown_grace_s, access_log_class=AccessLogger
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("media_svc listening on %s:%d", host, port)
        await stop.wait()
        log.info("media_svc shutting down (grace %.1fs)", shutdown_grace_s)
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("media_svc stopped")


def build_app(settings: Settings) -> web.Application:
    """The app as the process runs it: settings' storage root and keys, the global registry."""
    return make_app(
        settings.storage_root,
        KeyRing.parse(settings.media_signing_keys),
        registry=prometheus_client.REGISTRY,
        web_root=settings.web_root,
    )


def main() -> None:
    """Entry point of ``python -m media_svc``."""
    settings = get_settings()
    configure_logging("media_svc", settings.log_level)
    exit_unless_safe(settings, [media_signing(settings)])
    host, port = parse_addr(settings.listen_addr or settings.media_addr)
    # Scraped on its metrics port like every service (the app's own /metrics stays for tests).
    metrics_port = settings.metrics_port or METRICS_PORTS["media_svc"]
    with contextlib.suppress(OSError):  # a busy metrics port must not keep the origin down
        prometheus_client.start_http_server(metrics_port, addr=settings.metrics_host)
    if not settings.storage_root.is_dir():
        log.warning("storage root %s does not exist yet: every object will be 404", settings.storage_root)
    eventloop.run(serve(build_app(settings), host, port, shutdown_grace_s=settings.shutdown_grace_s))


if __name__ == "__main__":
    main()
