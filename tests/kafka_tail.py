"""Reading what a test makes a service publish: a consumer placed at the end of every partition of
a topic before the test acts, so it sees only what comes after (other tests share the broker)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def tail(bootstrap: str, *topics: str) -> KafkaConsumer:
    """A consumer at the current end of each of `topics` (ends resolved now, before anything is
    published)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)
    return consumer


def poll_count(consumer: KafkaConsumer, count: int, within: float = 30.0) -> int:
    """Poll until `count` records came (returns how many, which may be more); fail after `within`."""
    deadline = time.monotonic() + within
    read = 0
    while read < count:
        assert time.monotonic() < deadline, f"{read} of {count} records within {within}s"
        read += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    return read
