"""Prometheus metrics with the names, labels and buckets the dashboards use, defined once."""

from __future__ import annotations

import functools
import logging

from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Request latency buckets, seconds: every request histogram in the mesh uses them.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# http_request_duration_seconds, named and labelled as for HTTP whether the call came as JSON
# through Envoy's transcoder or as native gRPC: `method` and `route` are the HTTP verb and path
# template of the RPC's google.api.http rule (`GET`, `/api/playback/stream`), so the seed's
# queries on `route` work; an RPC with no rule is `POST` on its gRPC path. `status_code` is the
# HTTP status Envoy maps the gRPC status to, so the SLI queries (status_code=~"5..") work too.
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Duration of requests in seconds",
    ["method", "route", "status_code"],
    buckets=LATENCY_BUCKETS,
)
# Calls that are not requests of a client: health probes, reflection, and Envoy's ext_authz and
# rate-limit checks (one of each per request, which would double the request rate in the SLI).
CONTROL_DURATION = Histogram(
    "control_call_duration_seconds",
    "Duration of health, reflection and ext_authz calls in seconds",
    ["rpc", "status_code"],
    buckets=LATENCY_BUCKETS,
)
CONTROL_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/envoy.service.auth.v3.Authorization/",
)
PLAYBACK_EVENTS = Counter("playback_events_total", "Total playback events", ["event_type", "device_type"])
# device_type comes from clients: anything outside this set is counted as "other", so a client
# cannot create series at will.
DEVICE_TYPES = frozenset(
    {"computer", "smartphone", "tablet", "speaker", "tv", "automobile", "game_console", "web", "unknown"}
)
ACTIVE_STREAMS = Gauge("active_streams", "Number of currently active streams")
RECOMMENDATION_SECONDS = Histogram(
    "recommendation_generation_seconds",
    "Time to generate recommendations",
    ["algorithm"],
    buckets=[0.1, 0.25, 0.5, 1, 2, 5, 10],
)
CACHE_HITS = Counter("cache_hits_total", "Cache hits", ["cache_type"])
CACHE_MISSES = Counter("cache_misses_total", "Cache misses", ["cache_type"])
# Messages a consumer group has yet to read, per partition it holds (high watermark - position).
KAFKA_CONSUMER_LAG = Gauge("kafka_consumer_lag", "Messages not yet consumed", ["group", "topic", "partition"])


# Whether the interceptor records each call (METRICS_ENABLED; see meshkit.server).
REQUESTS_MEASURED = True


def stop_measuring_requests() -> None:
    global REQUESTS_MEASURED
    REQUESTS_MEASURED = False


def device_type_label(device_type: str) -> str:
    cleaned = device_type.strip().lower()
    return cleaned if cleaned in DEVICE_TYPES else "other"


@functools.cache
def http_route(rpc_path: str) -> tuple[str, str]:
    """(HTTP verb, path template) of an RPC's primary google.api.http rule; ("POST", the gRPC path)
    when it has none. Cached per RPC: only registered methods get here, so the cache is bounded."""
    service, _, method = rpc_path.lstrip("/").rpartition("/")
    try:
        found = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        return "POST", rpc_path
    options = found.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return "POST", rpc_path
    rule = options.Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        return "POST", rpc_path
    if pattern == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return pattern.upper(), str(getattr(rule, pattern))


def start_exporter(host: str, port: int) -> None:
    """Serve /metrics on host:port; a negative port disables the exporter."""
    if port < 0:
        return
    start_http_server(port, addr=host)
    log.info("metrics exporter listening", extra={"host": host, "port": port})
