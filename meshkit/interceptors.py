"""The one server interceptor every service runs: request context, errors, logs and metrics.

Servicers stay free of cross-cutting code: they raise DomainError subclasses and this
layer turns them into status codes; anything else becomes INTERNAL with the request id,
never a stack trace on the wire.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import redis.exceptions
import sqlalchemy.exc
from grpc import aio

from meshkit import metrics
from meshkit.context import (
    IDEMPOTENCY_KEY,
    REQUEST_ID_KEY,
    caller_from_metadata,
    caller_var,
    idempotency_key_var,
    request_id_var,
)
from meshkit.errors import HTTP_STATUS, DomainError
from meshkit.metrics import CONTROL_DURATION, CONTROL_PREFIXES, REQUEST_DURATION, http_route

log = logging.getLogger("meshkit.rpc")

# Failures of a dependency (database, Redis, Kafka, another service) that a retry may cure:
# UNAVAILABLE (HTTP 503) rather than INTERNAL (500).
_TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _kafka_unavailable(exc: BaseException) -> bool:
    """A broker that cannot be reached. Looked up, not imported: kafka-python is a hundred modules
    that a process without a producer or consumer never loads, and then no error can be one."""
    errors = sys.modules.get("kafka.errors")
    return errors is not None and isinstance(exc, (errors.KafkaTimeoutError, errors.NoBrokersAvailable))


def _transient_code(exc: BaseException) -> grpc.StatusCode | None:
    if isinstance(exc, _TRANSIENT) or _kafka_unavailable(exc):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ):
        return exc.code()
    return None


class _Call:
    """Bookkeeping for one RPC: context set-up, the outcome, and what is logged and measured.

    Used as `async with _Call(...)` around the handler: an exception that leaves the block aborts
    the RPC with the status it stands for (an abort already made passes through), and the outcome
    is recorded however the block ends.
    """

    def __init__(
        self, method: str, metadata: tuple[tuple[str, Any], ...], context: aio.ServicerContext
    ) -> None:
        self.method = method
        self.context = context
        values = {key.lower(): value for key, value in metadata if isinstance(value, str)}
        self.request_id = values.get(REQUEST_ID_KEY) or uuid.uuid4().hex
        self.tokens = (
            request_id_var.set(self.request_id),
            caller_var.set(caller_from_metadata(metadata)),
            idempotency_key_var.set(values.get(IDEMPOTENCY_KEY, "")),
        )
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.OK

    async def __aenter__(self) -> _Call:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            if isinstance(exc, Exception) and not isinstance(exc, aio.AbortError):
                await self.fail(exc)
        finally:
            self.finish()

    async def fail(self, exc: BaseException) -> None:
        """Abort the RPC with the status that `exc` stands for."""
        if isinstance(exc, DomainError):
            self.code = exc.code
            await self.context.abort(exc.code, exc.message)
        if isinstance(exc, NotImplementedError):  # the generated base servicer's default
            self.code = grpc.StatusCode.UNIMPLEMENTED
            await self.context.abort(self.code, f"{self.method} is not implemented")
        transient = _transient_code(exc)
        if transient is not None:
            self.code = transient
            log.warning("dependency unavailable in %s: %s", self.method, exc)
            await self.context.abort(
                transient, f"a dependency is unavailable, retry later (request id {self.request_id})"
            )
        self.code = grpc.StatusCode.INTERNAL
        log.error("unhandled error in %s", self.method, exc_info=exc)
        await self.context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {self.request_id})")

    def finish(self) -> None:
        """Record the outcome and restore the context variables."""
        code = self.context.code()
        if isinstance(code, grpc.StatusCode) and self.code is grpc.StatusCode.OK:
            self.code = code
        elapsed = time.perf_counter() - self.started
        status = str(HTTP_STATUS.get(self.code, 500))
        # Health probes arrive every few seconds, and Envoy's ext_authz and rate-limit calls come
        # with every request (Envoy's access log has those): measured apart, and never logged.
        control = self.method.startswith(CONTROL_PREFIXES)
        if metrics.REQUESTS_MEASURED:
            if control:
                CONTROL_DURATION.labels(self.method, status).observe(elapsed)
            else:
                REQUEST_DURATION.labels(*http_route(self.method), status).observe(elapsed)
        if not control:
            log.info(
                "rpc finished",
                extra={
                    "rpc": self.method,
                    "grpc_code": self.code.name,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
        request_id_var.reset(self.tokens[0])
        caller_var.reset(self.tokens[1])
        idempotency_key_var.reset(self.tokens[2])


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], method: str, metadata: Any) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext) -> Any:
        async with _Call(method, metadata, context):
            return await behavior(request, context)

    return handler


def _wrap_stream(
    behavior: Callable[..., AsyncIterator[Any]], method: str, metadata: Any
) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        async with _Call(method, metadata, context):
            async for response in behavior(request, context):
                yield response

    return handler


class RequestInterceptor(aio.ServerInterceptor):
    """Wraps every handler with _Call's context, error mapping, logging and metrics."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())

        def wrap(behavior: Any) -> Any:
            if inspect.isasyncgenfunction(behavior):
                return _wrap_stream(behavior, method, metadata)
            return _wrap_unary(behavior, method, metadata)

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap(handler.unary_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap(handler.stream_unary), handler.request_deserializer, handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            wrap(handler.stream_stream), handler.request_deserializer, handler.response_serializer
        )
