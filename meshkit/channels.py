"""Channels to other services: tracing, request-id/caller propagation and a deadline on every call.

A service may run several replicas. A channel spreads its calls over every address its target
resolves to (round robin: `ipv4:a:1,b:2` locally, `dns:///` of a headless Service in k8s), and
gRPC retries the read-only RPCs (`services.READ_PREFIXES`) that fail UNAVAILABLE on another
replica, under a retry budget so that an outage is not multiplied. Writes are never retried here:
their callers own idempotency.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc import aio

from meshkit import services
from meshkit.context import outgoing_metadata
from meshkit.telemetry import client_interceptors

# Two tries in all: the second lands on another replica (round robin skips a dead one).
READ_RETRY_ATTEMPTS = 2
# Retries stop while more than half the recent calls failed (gRPC's retry throttling: a token
# bucket of 10, each failure costs one, each success gives back 0.1).
RETRY_TOKENS = {"maxTokens": 10, "tokenRatio": 0.1}
# A server closes each connection after this long (meshkit.server), so clients resolve the
# target again and reach replicas added since they connected.
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000


class _PropagateInterceptor(aio.UnaryUnaryClientInterceptor, aio.UnaryStreamClientInterceptor):
    """Adds this request's id and caller to outgoing metadata and a default deadline when none is set."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()))
        for key, value in outgoing_metadata():
            if key not in metadata:
                metadata.add(key, value)
        return aio.ClientCallDetails(
            details.method,
            details.timeout if details.timeout is not None else self.timeout_s,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


def read_methods() -> list[dict[str, str]]:
    """The read-only methods of every gRPC service of the mesh loaded in this process, as service
    config names. The generated modules a service calls are imported before it opens channels."""
    pool = descriptor_pool.Default()
    names = []
    for service in services.SERVICES:
        for full_name in service.public_grpc:
            try:
                described = pool.FindServiceByName(full_name)
            except KeyError:
                continue
            names += [
                {"service": full_name, "method": method.name}
                for method in described.methods
                if services.is_read_only(f"/{full_name}/{method.name}") and not method.client_streaming
            ]
    return names


def service_config() -> str:
    """Round robin over every resolved address, and one retry of reads that were UNAVAILABLE."""
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}], "retryThrottling": RETRY_TOKENS}
    reads = read_methods()
    if reads:
        config["methodConfig"] = [
            {
                "name": reads,
                "retryPolicy": {
                    "maxAttempts": READ_RETRY_ATTEMPTS,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def open_channel(address: str, *, timeout_s: float = 5.0) -> aio.Channel:
    """An insecure (mesh-internal, h2c) channel whose calls carry context and a deadline."""
    return aio.insecure_channel(
        address,
        interceptors=[_PropagateInterceptor(timeout_s), *client_interceptors()],
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.service_config", service_config()),
            ("grpc.enable_retries", 1),
        ],
    )


def endpoints(target: str) -> list[str]:
    """Each address a target names, for a call every replica must get (`host:port` each).

    `ipv4:a:1,b:2` lists them; a name (`host:port` or `dns:///host:port`, gRPC's default
    resolver) resolves as gRPC resolves it: a headless Service to one address per pod."""
    if target.startswith("ipv4:"):
        return target.removeprefix("ipv4:").split(",")
    host, _, port = target.removeprefix("dns:").lstrip("/").rpartition(":")
    found = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    return sorted({f"{info[4][0]}:{port}" for info in found})


def is_status(exc: BaseException, *codes: grpc.StatusCode) -> bool:
    """Whether `exc` is an RPC error with one of `codes`."""
    return isinstance(exc, aio.AioRpcError) and exc.code() in codes
