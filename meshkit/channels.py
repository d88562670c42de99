"""Channels to other services: tracing, request-id/caller propagation and a deadline on every call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from meshkit.context import outgoing_metadata
from meshkit.telemetry import client_interceptors


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


def open_channel(address: str, *, timeout_s: float = 5.0) -> aio.Channel:
    """An insecure (mesh-internal, h2c) channel whose calls carry context and a deadline."""
    return aio.insecure_channel(
        address,
        interceptors=[_PropagateInterceptor(timeout_s), *client_interceptors()],
        options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
    )


def is_status(exc: BaseException, *codes: grpc.StatusCode) -> bool:
    """Whether `exc` is an RPC error with one of `codes`."""
    return isinstance(exc, aio.AioRpcError) and exc.code() in codes
