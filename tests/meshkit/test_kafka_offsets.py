"""meshkit.kafka.handled_offsets: a consumer commits one past the last record it handled, and only
for the partitions it handled."""

from __future__ import annotations

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from meshkit.kafka import handled_offsets


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, -1, offset, 0, 0, None, b"", [], None, -1, -1, -1)


def test_one_past_the_last_handled_record_of_each_handled_partition() -> None:
    records = [_record("a", 0, 7), _record("a", 0, 9), _record("a", 2, 0), _record("b", 0, 4)]
    offsets = handled_offsets(records)
    assert {tp: meta.offset for tp, meta in offsets.items()} == {
        TopicPartition("a", 0): 10,
        TopicPartition("a", 2): 1,
        TopicPartition("b", 0): 5,
    }
