"""OpenTelemetry tracing: wired into every server, channel, database engine, Redis client and
Kafka producer when an OTLP endpoint is configured.

Envoy starts the trace and decides whether it is sampled (its `random_sampling`, from the Envoy
target); it sends W3C `traceparent` upstream, and every service continues that trace and follows
its decision (a parent-based sampler; `TRACE_SAMPLE_RATIO` applies only to traces a service
starts itself, such as a consumer's). Without an exporter the spans would go nowhere, and the
gRPC interceptors cost about 0.1 ms of CPU per call each (measured on GetMe: 1.82 -> 1.60 ms per
request), so nothing is instrumented; x-request-id still travels through every hop and every log
line (meshkit.interceptors, meshkit.channels).
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

log = logging.getLogger(__name__)

__all__ = [
    "client_interceptors",
    "configure_tracing",
    "server_interceptors",
    "tracer",
    "tracing_enabled",
]

_exporting = False


def configure_tracing(
    service: str, otlp_endpoint: str = "", *, sample_ratio: float = 1.0, version: str = ""
) -> None:
    """Install a tracer provider named after the service with an OTLP exporter, when one is
    configured, and instrument SQLAlchemy engines, Redis clients and Kafka producers."""
    global _exporting
    if not otlp_endpoint or isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # nothing to export to, or already configured in this process
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    resource = Resource.create({"service.name": service, "service.version": version or "dev"})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()
    KafkaInstrumentor().instrument()
    # Wraps sqlalchemy's engine constructors, looked up at call time (meshkit.db calls them
    # through their modules), so every engine made from here on traces its statements. Its
    # declared range stops below SQLAlchemy 2.1, which we run; the engine events it hooks are
    # unchanged in 2.1, and tests/e2e/test_traces.py checks the SQL spans arrive.
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    _exporting = True


def tracing_enabled() -> bool:
    return _exporting


def tracer(name: str) -> trace.Tracer:
    """The tracer for a module's own spans (a no-op one while nothing exports)."""
    return trace.get_tracer(name)


def server_interceptors() -> list[Any]:
    """The tracing server interceptor, or none when spans have nowhere to go."""
    return [aio_server_interceptor()] if _exporting else []


def client_interceptors() -> list[Any]:
    """The tracing client interceptors, or none when spans have nowhere to go."""
    return list(aio_client_interceptors()) if _exporting else []
