"""Prometheus metrics with the names, labels and buckets the dashboards use, defined once."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Request latency buckets, seconds: every request histogram in the mesh uses them.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# http_request_duration_seconds, named as for HTTP; for a gRPC call `method` is the RPC name,
# `route` the full method path and `status_code` the HTTP status Envoy maps the gRPC status to,
# so the SLI queries (status_code=~"5..") work unchanged.
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Duration of requests in seconds",
    ["method", "route", "status_code"],
    buckets=LATENCY_BUCKETS,
)
PLAYBACK_EVENTS = Counter("playback_events_total", "Total playback events", ["event_type", "device_type"])
ACTIVE_STREAMS = Gauge("active_streams", "Number of currently active streams")
RECOMMENDATION_SECONDS = Histogram(
    "recommendation_generation_seconds",
    "Time to generate recommendations",
    ["algorithm"],
    buckets=[0.1, 0.25, 0.5, 1, 2, 5, 10],
)
CACHE_HITS = Counter("cache_hits_total", "Cache hits", ["cache_type"])
CACHE_MISSES = Counter("cache_misses_total", "Cache misses", ["cache_type"])


def start_exporter(host: str, port: int) -> None:
    """Serve /metrics on host:port; a negative port disables the exporter."""
    if port < 0:
        return
    start_http_server(port, addr=host)
    log.info("metrics exporter listening", extra={"host": host, "port": port})
