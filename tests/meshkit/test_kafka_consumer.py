"""meshkit.kafka.AsyncConsumer on the test broker: a failing batch is retried, never skipped, and
its offsets are committed only once it succeeded; a consumer stopped mid-failure commits nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from meshkit.kafka import AsyncConsumer, ConsumerConfig, ensure_topics


def _topic_with(bootstrap: str, values: list[bytes]) -> str:
    topic = f"meshkit.consumer-{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap, {topic: 1})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value=value).get(timeout=10)
    finally:
        producer.close()
    return topic


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0)) or 0
    finally:
        consumer.close()


async def _until(check, within: float = 40.0) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_a_failing_batch_is_retried_until_it_succeeds(kafka_bootstrap: str) -> None:
    topic = _topic_with(kafka_bootstrap, [b"a", b"b", b"c"])
    group = f"meshkit-test-{uuid.uuid4().hex[:10]}"
    attempts: list[list[bytes]] = []

    async def handle(records: list) -> None:
        attempts.append([r.value for r in records])
        if len(attempts) <= 2:
            raise RuntimeError("the database is down")

    consumer = AsyncConsumer(ConsumerConfig(kafka_bootstrap, group, (topic,)), handle, retry_s=0.05)
    consumer.start()
    try:
        await _until(lambda: _committed(kafka_bootstrap, group, topic) == 3)
    finally:
        await consumer.stop()
    assert len(attempts) >= 3
    assert attempts[0] == attempts[1] == attempts[2]  # the same batch again, nothing skipped
    assert sorted(v for batch in attempts[2:] for v in batch) == [b"a", b"b", b"c"]


async def test_stopping_with_a_failing_batch_commits_nothing(kafka_bootstrap: str) -> None:
    topic = _topic_with(kafka_bootstrap, [b"x"])
    group = f"meshkit-test-{uuid.uuid4().hex[:10]}"
    tried = asyncio.Event()

    async def handle(records: list) -> None:
        tried.set()
        raise RuntimeError("never works")

    consumer = AsyncConsumer(ConsumerConfig(kafka_bootstrap, group, (topic,)), handle, retry_s=0.05)
    consumer.start()
    try:
        await asyncio.wait_for(tried.wait(), timeout=40)
    finally:
        await consumer.stop()
    assert _committed(kafka_bootstrap, group, topic) == 0
