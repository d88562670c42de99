"""meshkit.kafka.handled_offsets: a consumer commits one past the last record it handled, and only
for the partitions it handled; commit_or_replay: a commit the broker refuses is not fatal."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import RebalanceInProgressError

from meshkit.kafka import commit_or_replay, handled_offsets


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


class _Refusing:
    """A consumer whose commit the broker refuses (a pure unit: commit_or_replay does no I/O itself)."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.committed: list[dict[TopicPartition, object]] = []

    def commit(self, offsets: dict[TopicPartition, object]) -> None:
        if self.error is not None:
            raise self.error
        self.committed.append(offsets)


def test_a_refused_commit_leaves_the_batch_to_be_read_again_instead_of_ending_the_consumer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [_record("a", 0, 3)]
    refusing = _Refusing(RebalanceInProgressError())
    assert commit_or_replay(refusing, records, "g") is False  # type: ignore[arg-type]
    assert "RebalanceInProgressError" in caplog.text and "read again" in caplog.text
    accepting = _Refusing(None)
    assert commit_or_replay(accepting, records, "g") is True  # type: ignore[arg-type]
    assert [{tp: m.offset for tp, m in c.items()} for c in accepting.committed] == [  # type: ignore[attr-defined]
        {TopicPartition("a", 0): 4}
    ]
    with pytest.raises(ValueError):  # anything but the broker's refusal still surfaces
        commit_or_replay(_Refusing(ValueError("bug")), records, "g")  # type: ignore[arg-type]
