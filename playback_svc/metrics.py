"""playback_svc's own Prometheus metrics (those every service shares live in meshkit.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Server side of a stream start: GetStreamUrl from request to signed URLs (catalog lookups
# included). Finer buckets than the request histogram: the goal on loopback is milliseconds.
STREAM_START_SECONDS = Histogram(
    "stream_start_seconds",
    "Time to choose a quality and sign the stream URLs for a stream start",
    ["quality_kbps"],
    buckets=[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
)
STREAMS_COUNTED = Counter("streams_counted_total", "Playback sessions counted as streams", ["product"])
COUNTER_SKIPPED = Counter(
    "stream_counter_skipped_total",
    "Qualifying playback events the counter did not count, by reason",
    ["reason"],
)
COUNTER_BATCH_SECONDS = Histogram(
    "stream_counter_batch_seconds",
    "Time to handle one polled batch of playback events (lookups and the transaction)",
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
)
COUNTER_EVENT_AGE_SECONDS = Histogram(
    "stream_counter_event_age_seconds",
    "Time from the broker receiving a playback event to the counter handling it (consumer lag)",
    buckets=[0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka")
