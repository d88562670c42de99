"""A consumer across a restart of the memory-only broker: the new log starts at offset 0 while
the consumer still stands at its old position, and records below it must still be read.

Each test runs a private tansu broker of its own (it is killed and started again), never the
suite's shared one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from meshctl import datatier
from meshctl.processes import ProcessTable
from meshkit import kafka as kafka_module
from meshkit import topics as kafka_topics
from meshkit.kafka import BrokerWatch, ConsumerConfig, ConsumerLoop, ensure_topics, rewind_past_the_end
from tests.kafka_tail import poll_count


class Broker:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.procs = ProcessTable(run_dir)
        self.port = datatier.free_port()
        self.bootstrap = datatier.start_kafka(run_dir, self.procs, self.port)

    def restart(self, declare_topics: bool = True) -> None:
        """SIGKILL and start again on the same port: every topic and offset is gone (the registry's
        topics declared again at once, as the launcher does, unless told not to)."""
        self.procs.stop("kafka", sig=signal.SIGKILL)
        datatier.start_kafka(self.run_dir, self.procs, self.port, declare_topics=declare_topics)

    def produce(
        self, topic: str, values: list[bytes], partitions: int = 1, partition: int | None = None
    ) -> None:
        ensure_topics(self.bootstrap, {topic: partitions})
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for value in values:
                producer.send(topic, value=value, partition=partition).get(timeout=10)
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
    # A registry topic (this broker is the test's own): declared again by whoever restarts the broker.
    topic, partitions = kafka_topics.STREAMS_COUNTED.name, kafka_topics.STREAMS_COUNTED.partitions
    broker.produce(topic, [b"old-%d" % i for i in range(10)], partitions=partitions)
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
        broker.produce(topic, [b"new-%d" % i for i in range(3)], partitions=partitions)
        deadline = time.monotonic() + 60
        while not {b"new-0", b"new-1", b"new-2"} <= set(handled):
            assert time.monotonic() < deadline and not loop.exited.is_set(), handled[10:]
            time.sleep(0.2)
    finally:
        loop.stop()


def test_a_new_log_that_grew_past_the_old_position_is_read_from_its_start(broker: Broker) -> None:
    """The replaced broker's log holds more records than the old position before the consumer
    fetches again: the fetch returns only those above it, and the watch says so before they are
    taken (ConsumerLoop then replaces the consumer; here the test reads from 0 itself)."""
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
                consumer.seek_to_beginning(partition)
                continue  # what came at the old position is dropped: it is read again from 0
            seen += batch
        assert replaced
        assert seen == new
    finally:
        consumer.close()


def test_topics_that_come_back_one_after_the_other_are_all_read(broker: Broker) -> None:
    """After a restart the topics are declared late, one after the other (the test's producer
    declares each before it sends). The group joins again once all are back (kafka-python would never join
    again for a topic that appears after the join), and reads both from their start."""
    early, late = kafka_topics.STREAMS_COUNTED, kafka_topics.CATALOG_CHANGES
    broker.produce(early.name, [b"old-early"], partitions=early.partitions)
    broker.produce(late.name, [b"old-late"], partitions=late.partitions)
    handled: list[bytes] = []
    lock = threading.Lock()

    def handle(records: list) -> None:
        with lock:
            handled.extend(r.value for r in records)

    def wait_for(*values: bytes) -> None:
        deadline = time.monotonic() + 60
        while not set(values) <= set(handled):
            assert time.monotonic() < deadline and not loop.exited.is_set(), handled
            time.sleep(0.2)

    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = ConsumerLoop(ConsumerConfig(broker.bootstrap, group, (early.name, late.name)), handle)
    loop.start()
    try:
        wait_for(b"old-early", b"old-late")
        broker.restart(declare_topics=False)
        broker.produce(early.name, [b"new-early"], partitions=early.partitions)
        time.sleep(2)  # the late topic comes back after the first one, whatever the consumer does
        broker.produce(late.name, [b"new-late"], partitions=late.partitions)
        wait_for(b"new-early", b"new-late")
    finally:
        loop.stop()


def test_a_new_log_as_long_as_the_old_position_is_read_from_its_start(broker: Broker) -> None:
    """The worst case for a consumer that kept its positions: the new log ends exactly where the
    old position stands, so nothing looks wrong (not past the end) and the record below is skipped."""
    topic = kafka_topics.STREAMS_COUNTED
    broker.produce(topic.name, [b"old"], partitions=topic.partitions, partition=0)
    handled: list[bytes] = []
    lock = threading.Lock()

    def handle(records: list) -> None:
        with lock:
            handled.extend(r.value for r in records)

    def wait_for(value: bytes) -> None:
        deadline = time.monotonic() + 60
        while value not in handled:
            assert time.monotonic() < deadline and not loop.exited.is_set(), handled
            time.sleep(0.2)

    loop = ConsumerLoop(ConsumerConfig(broker.bootstrap, f"g-{uuid.uuid4().hex[:8]}", (topic.name,)), handle)
    loop.start()
    try:
        wait_for(b"old")
        broker.restart()
        broker.produce(topic.name, [b"new"], partitions=topic.partitions, partition=0)
        wait_for(b"new")
    finally:
        loop.stop()


def test_a_consumer_waits_for_its_topics_and_never_creates_them(
    broker: Broker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only whoever starts the broker declares topics: a consumer whose topic is missing waits,
    says so, and joins once it is declared (clients creating topics raced with each other after a
    restart, and a create overlapping a produce hid that record on the memory-only broker)."""
    monkeypatch.setattr(kafka_module, "TOPIC_WAIT_WARN_S", 0.5)
    topic = kafka_topics.CATALOG_CHANGES
    broker.restart(declare_topics=False)
    handled: list[ConsumerRecord] = []
    loop = ConsumerLoop(
        ConsumerConfig(broker.bootstrap, f"g-{uuid.uuid4().hex[:8]}", (topic.name,)), handled.extend
    )
    with caplog.at_level(logging.WARNING, logger="meshkit.kafka"):
        loop.start()
        try:
            deadline = time.monotonic() + 30
            while f"topic {topic.name} not declared yet" not in caplog.text:
                assert time.monotonic() < deadline and not loop.exited.is_set(), caplog.text
                time.sleep(0.1)
            probe = KafkaConsumer(bootstrap_servers=broker.bootstrap)
            try:
                assert not probe.partitions_for_topic(topic.name)  # the waiting consumer created nothing
            finally:
                probe.close()

            broker.produce(topic.name, [b"first"], partitions=topic.partitions)
            while not handled:
                assert time.monotonic() < deadline + 30 and not loop.exited.is_set()
                time.sleep(0.1)
        finally:
            loop.stop()
    assert [r.value for r in handled] == [b"first"]
