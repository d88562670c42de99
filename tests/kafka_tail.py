"""Reading what a test makes a service publish: a consumer placed at the end of every partition of
a topic before the test acts, so it sees only what comes after (other tests share the broker)."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition


def tail(bootstrap: str, topic: str) -> KafkaConsumer:
    """A consumer at the current end of `topic` (ends resolved now, before anything is published)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)
    return consumer
