"""OpenTelemetry tracing: wired into every server and channel when an OTLP endpoint is configured.

Envoy starts the trace (traceparent / x-request-id); the gRPC interceptors from
opentelemetry-instrumentation-grpc continue it in every server and client. Without an exporter
the spans would go nowhere, and the two interceptors cost about 0.1 ms of CPU per call each
(measured on GetMe: 1.82 -> 1.60 ms per request), so they are left out; x-request-id still
travels through every hop and every log line (meshkit.interceptors, meshkit.channels).
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)

__all__ = ["client_interceptors", "configure_tracing", "server_interceptors", "tracing_enabled"]

_exporting = False


def configure_tracing(service: str, otlp_endpoint: str = "") -> None:
    """Install a tracer provider named after the service with an OTLP exporter, when one is configured."""
    global _exporting
    if not otlp_endpoint or isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # nothing to export to, or already configured in this process
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not installed")
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _exporting = True


def tracing_enabled() -> bool:
    return _exporting


def server_interceptors() -> list[Any]:
    """The tracing server interceptor, or none when spans have nowhere to go."""
    return [aio_server_interceptor()] if _exporting else []


def client_interceptors() -> list[Any]:
    """The tracing client interceptors, or none when spans have nowhere to go."""
    return list(aio_client_interceptors()) if _exporting else []
