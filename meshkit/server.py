"""gRPC server bootstrap shared by every service.

A service's `server.py` says only which servicers it runs and which resources they need;
this module builds the server (interceptors, health, reflection), starts it, and drains it
gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meshkit.config import Settings, get_settings
from meshkit.interceptors import RequestInterceptor
from meshkit.logs import app_version, configure_logging
from meshkit.metrics import start_exporter, stop_measuring_requests
from meshkit.services import DEFAULT_PORTS, METRICS_PORTS
from meshkit.telemetry import configure_tracing, server_interceptors

log = logging.getLogger(__name__)

# Registers the service's servicers on `server`, pushes clean-up onto `stack`, and returns the
# fully-qualified names of the gRPC services it added (for health and reflection).
Setup = Callable[[aio.Server, Settings, AsyncExitStack], Awaitable[Sequence[str]]]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class RunningServer:
    """A started server with its health servicer, so tests and `serve` can stop it cleanly."""

    def __init__(self, server: aio.Server, health_servicer: health.aio.HealthServicer, port: int) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING (so Envoy stops routing here), then let in-flight RPCs finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def listen_address(service: str, settings: Settings) -> str:
    """Where the service listens: LISTEN_ADDR, or loopback on the service's default port."""
    return settings.listen_addr or f"127.0.0.1:{DEFAULT_PORTS[service]}"


async def start_server(
    service: str, setup: Setup, settings: Settings, stack: AsyncExitStack
) -> RunningServer:
    """Build and start the server; the stack owns every resource `setup` acquired."""
    server = aio.server(
        interceptors=[*server_interceptors(), RequestInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    names = list(await setup(server, settings, stack))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen_address(service, settings))
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port)


async def _serve(service: str, setup: Setup, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        running = await start_server(service, setup, settings, stack)
        log.info("serving", extra={"service": service, "port": running.port})
        await stop.wait()
        log.info("draining", extra={"grace_s": settings.shutdown_grace_s})
        await running.stop(settings.shutdown_grace_s)
    log.info("stopped")


def run(service: str, setup: Setup) -> None:
    """Entry point of `python -m <service>`: configure logging, tracing, metrics, then serve until SIGTERM."""
    settings = get_settings()
    configure_logging(service, settings.log_level)
    configure_tracing(
        service,
        settings.otel_exporter_otlp_endpoint,
        sample_ratio=settings.trace_sample_ratio,
        version=app_version(),
    )
    if settings.metrics_enabled:
        port = settings.metrics_port or METRICS_PORTS[service]
        with contextlib.suppress(OSError):  # a busy metrics port must not keep the service down
            start_exporter(settings.metrics_host, port)
    else:
        stop_measuring_requests()
    asyncio.run(_serve(service, setup, settings))
