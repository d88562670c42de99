"""A consumer across a restart of the memory-only broker: the new log starts at offset 0 while
the consumer still stands at its old position, and records below it must still be read.

Each test runs a private tansu broker of its own (it is killed and started again), never the
suite's shared one.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from meshctl import datatier
from meshctl.processes import ProcessTable
from meshkit.kafka import BrokerWatch, ConsumerConfig, ConsumerLoop, ensure_topics, rewind_past_the_end
from tests.kafka_tail import poll_count


class Broker:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.procs = ProcessTable(run_dir)
        self.port = datatier.free_port()
        self.bootstrap = datatier.start_kafka(run_dir, self.procs, self.port)

    def restart(self) -> None:
        """SIGKILL and start again on the same port: every topic and offset is gone."""
        self.procs.stop("kafka", sig=signal.SIGKILL)
        datatier.start_kafka(self.run_dir, self.procs, self.port)

    def produce(self, topic: str, values: list[bytes]) -> None:
        ensure_topics(self.bootstrap, {topic: 1})
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for value in values:
                producer.send(topic, value=value).get(timeout=10)
        finally:
            producer.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(tmp_path)
    yield started
    started.procs.stop("kafka", sig=signal.SIGKILL)


def test_a_position_past_the_new_log_end_is_rewound(broker: Broker) -> None:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    broker.produce(topic, [b"old-%d" % i for i in range(10)])
    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        poll_count(consumer, 10)
        assert rewind_past_the_end(consumer, "test") == []  # at the end, not past it

        broker.restart()
        broker.produce(topic, [b"new-%d" % i for i in range(3)])
        seen: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            seen += [r.value for batch in consumer.poll(timeout_ms=500).values() for r in batch]
            if not seen:
                rewind_past_the_end(consumer, "test")
        assert seen == [b"new-0", b"new-1", b"new-2"]
    finally:
        consumer.close()


def test_a_consumer_group_reads_what_the_restarted_broker_gets(broker: Broker) -> None:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    broker.produce(topic, [b"old-%d" % i for i in range(10)])
    handled: list[bytes] = []
    lock = threading.Lock()

    def handle(records: list) -> None:
        with lock:
            handled.extend(r.value for r in records)

    loop = ConsumerLoop(ConsumerConfig(broker.bootstrap, f"g-{uuid.uuid4().hex[:8]}", (topic,)), handle)
    loop.start()
    try:
        deadline = time.monotonic() + 60
        while len(handled) < 10:
            assert time.monotonic() < deadline, handled
            time.sleep(0.2)
        broker.restart()
        broker.produce(topic, [b"new-%d" % i for i in range(3)])
        deadline = time.monotonic() + 60
        while not {b"new-0", b"new-1", b"new-2"} <= set(handled):
            assert time.monotonic() < deadline and not loop.exited.is_set(), handled[10:]
            time.sleep(0.2)
    finally:
        loop.stop()


def test_a_new_log_that_grew_past_the_old_position_is_read_from_its_start(broker: Broker) -> None:
    """The replaced broker's log holds more records than the old position before the consumer
    fetches again: the fetch returns only those above it, and the watch sends it back to 0."""
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    broker.produce(topic, [b"old-%d" % i for i in range(4)])
    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    watch = BrokerWatch("test")
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        poll_count(consumer, 4)
        assert not watch.replaced(consumer)  # the first id seen is the one known

        broker.restart()
        new = [b"new-%d" % i for i in range(6)]
        broker.produce(topic, new)
        seen: list[bytes] = []
        replaced = False
        deadline = time.monotonic() + 30
        while seen[-6:] != new and time.monotonic() < deadline:
            batch = [r.value for batch in consumer.poll(timeout_ms=500).values() for r in batch]
            if watch.replaced(consumer):
                replaced = True
                continue  # what came at the old position is dropped: it is read again from 0
            seen += batch
        assert replaced
        assert seen == new
    finally:
        consumer.close()
