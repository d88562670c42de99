"""meshkit.kafka.Producer against a broker of its own that is killed and started again: it answers
Unavailable in bounded time without ever blocking the event loop, and publishes again (topics
re-created as the registry declares them) once the broker is back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from meshctl import datatier
from meshctl.processes import ProcessTable
from meshkit import topics
from meshkit.errors import Unavailable
from meshkit.kafka import Producer, ensure_topics


async def _ticking(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.05)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


async def test_a_broker_outage_is_unavailable_in_bounded_time_and_healed_after(tmp_path: Path) -> None:
    procs = ProcessTable(tmp_path)
    port = datatier.free_port()
    bootstrap = datatier.start_kafka(tmp_path, procs, port)
    topic = topics.PLAYBACK_EVENTS
    producer = Producer(bootstrap, client_id="outage-test", timeout_s=4.0)
    try:
        ensure_topics(bootstrap)
        await producer.publish_many_raw(topic.name, [("k", b"before")])
        procs.stop("kafka", sig=signal.SIGKILL)

        stop, gaps = asyncio.Event(), []
        ticker = asyncio.create_task(_ticking(stop, gaps))
        for _ in range(2):  # the first fails on the old client, the second on a broker still down
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await producer.publish_many_raw(topic.name, [("k", b"during")])
            assert time.monotonic() - started < producer.timeout_s + 1
        stop.set()
        await ticker
        assert max(gaps) < 0.5, "publishing blocked the event loop"

        datatier.start_kafka(tmp_path, procs, port)  # empty: a memory-only broker lost its topics
        deadline = time.monotonic() + 30
        while True:
            try:
                await producer.publish_many_raw(topic.name, [("k", b"after")])
                break
            except Unavailable:
                assert time.monotonic() < deadline, "the producer never published again"
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            assert len(consumer.partitions_for_topic(topic.name) or ()) == topic.partitions
        finally:
            consumer.close()
    finally:
        await asyncio.to_thread(producer.close, 0)
        procs.stop("kafka", sig=signal.SIGKILL)
