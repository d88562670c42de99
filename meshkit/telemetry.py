"""OpenTelemetry tracing: always wired, exporting only when an OTLP endpoint is configured.

Envoy starts the trace (traceparent / x-request-id); the gRPC interceptors from
opentelemetry-instrumentation-grpc continue it in every server and client.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)

__all__ = ["aio_client_interceptors", "aio_server_interceptor", "configure_tracing"]


def configure_tracing(service: str, otlp_endpoint: str = "") -> None:
    """Install a tracer provider named after the service; add an OTLP exporter when one is configured."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # already configured in this process (tests start several servers)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not installed")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
