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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, cast

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meshkit import eventloop
from meshkit.channels import MAX_CONNECTION_AGE_MS
from meshkit.config import Settings, get_settings
from meshkit.interceptors import RequestInterceptor
from meshkit.logs import app_version, configure_logging
from meshkit.metrics import start_exporter, stop_measuring_requests
from meshkit.secrets import Secret, exit_unless_safe
from meshkit.services import (
    DEFAULT_PORTS,
    INTERNAL_PORTS,
    METRICS_PORTS,
    ROUTED_GRPC,
    EdgePolicy,
    edge_policy,
)
from meshkit.telemetry import configure_tracing, server_interceptors

log = logging.getLogger(__name__)

# Registers the service's servicers on `server`, pushes clean-up onto `stack`, and returns the
# fully-qualified names of the gRPC services it added (for health and reflection).
Setup = Callable[[aio.Server, Settings, AsyncExitStack], Awaitable[Sequence[str]]]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# In-flight calls (long uploads among them) may finish on a connection being aged out.
MAX_CONNECTION_AGE_GRACE_MS = 10 * 60 * 1000


class RunningServer:
    """A started service: its public and internal servers with their health servicers, so tests
    and `serve` can stop it cleanly."""

    def __init__(
        self, servers: list[tuple[aio.Server, health.aio.HealthServicer]], port: int, internal_port: int
    ) -> None:
        self.servers = servers
        self.port = port
        self.internal_port = internal_port

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING (so Envoy and callers stop sending here), then let in-flight RPCs finish."""
        for _, health_servicer in self.servers:
            await health_servicer.enter_graceful_shutdown()
        await asyncio.gather(*(server.stop(grace) for server, _ in self.servers))


def listen_address(service: str, settings: Settings) -> str:
    """Where the service listens for Envoy: LISTEN_ADDR, or loopback on the service's default port."""
    return settings.listen_addr or f"127.0.0.1:{DEFAULT_PORTS[service]}"


def internal_listen_address(service: str, settings: Settings) -> str:
    """Where the service listens for the rest of the mesh: INTERNAL_LISTEN_ADDR, else an ephemeral
    port beside an ephemeral LISTEN_ADDR, else loopback on its internal port."""
    if settings.internal_listen_addr:
        return settings.internal_listen_addr
    host, _, port = settings.listen_addr.rpartition(":")
    if settings.listen_addr and port == "0":
        return f"{host}:0"
    return f"127.0.0.1:{INTERNAL_PORTS[service]}"


def internal_methods(names: Sequence[str]) -> frozenset[str]:
    """The RPCs of the routed gRPC services among `names` that Envoy never routes
    (meshkit.services.edge_policy), from the descriptors the generated modules registered. The
    services only Envoy calls (ext_authz, rate limit) stay on the public port: Envoy calls them there."""
    pool = descriptor_pool.Default()
    found = set()
    for name in (name for name in names if name in ROUTED_GRPC):
        for method in pool.FindServiceByName(name).methods:
            path = f"/{name}/{method.name}"
            if (
                edge_policy(path, method.GetOptions().HasExtension(annotations_pb2.http))
                is EdgePolicy.INTERNAL
            ):
                found.add(path)
    return frozenset(found)


class _PublicOnly(aio.ServerInterceptor):
    """On the public port, an internal RPC does not exist: the same answer as an unknown method."""

    def __init__(self) -> None:
        self.internal: frozenset[str] = frozenset()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method in self.internal:
            return None
        return await continuation(handler_call_details)


class _Both:
    """What the generated `add_*Servicer_to_server` calls, forwarded to both servers, so that a
    setup registers its servicers once."""

    def __init__(self, *servers: aio.Server) -> None:
        self.servers = servers

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        for server in self.servers:
            server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict[str, Any]) -> None:
        for server in self.servers:
            server.add_registered_method_handlers(service_name, method_handlers)


async def start_server(
    service: str, setup: Setup, settings: Settings, stack: AsyncExitStack
) -> RunningServer:
    """Build and start the service's two servers (public, internal); the stack owns every resource
    `setup` acquired."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Clients balance over the replicas they resolved when they connected: closing each
        # connection after a while makes them resolve again and reach replicas added since.
        ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
    ]
    public_only = _PublicOnly()
    public = aio.server(
        interceptors=[public_only, *server_interceptors(), RequestInterceptor()], options=options
    )
    internal = aio.server(interceptors=[*server_interceptors(), RequestInterceptor()], options=options)
    names = list(await setup(cast(aio.Server, _Both(public, internal)), settings, stack))
    public_only.internal = internal_methods(names)
    servers = []
    ports = []
    for server, address in (
        (public, listen_address(service, settings)),
        (internal, internal_listen_address(service, settings)),
    ):
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        ports.append(server.add_insecure_port(address))
        await server.start()
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        servers.append((server, health_servicer))
    return RunningServer(servers, ports[0], ports[1])


async def _serve(service: str, setup: Setup, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        running = await start_server(service, setup, settings, stack)
        log.info(
            "serving",
            extra={"service": service, "port": running.port, "internal_port": running.internal_port},
        )
        await stop.wait()
        log.info("draining", extra={"grace_s": settings.shutdown_grace_s})
        await running.stop(settings.shutdown_grace_s)
    log.info("stopped")


def run(service: str, setup: Setup, secrets: Callable[[Settings], Iterable[Secret]] = lambda _: ()) -> None:
    """Entry point of `python -m <service>`: configure logging, refuse development keys in
    production (`secrets`: the keys this service uses), tracing, metrics, then serve until SIGTERM."""
    settings = get_settings()
    configure_logging(service, settings.log_level)
    exit_unless_safe(settings, secrets(settings))
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
    eventloop.run(_serve(service, setup, settings))
