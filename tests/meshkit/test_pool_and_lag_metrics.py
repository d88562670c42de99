"""The gauges the database-connections and consumer-lag alerts read: a pool's connections in use
against its maximum, and a consumer's unread messages per partition (real PostgreSQL and tansu)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from meshkit import db
from meshkit.db import normalize_url
from meshkit.kafka import LagGauge
from tests.kafka_tail import poll_count
from tests.meshkit.test_kafka_broker_restart import Broker


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_pools_connections_in_use_and_its_maximum_are_exported(database_url: str) -> None:
    pool = f"test_{uuid.uuid4().hex[:6]}"
    engine = db.create_engine(normalize_url(database_url), pool_size=2, name=pool)
    try:
        assert _sample("db_pool_connections_max", {"pool": pool}) == 4  # size + overflow
        assert _sample("db_pool_connections_in_use", {"pool": pool}) == 0
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(sa.text("SELECT 1"))
            await second.execute(sa.text("SELECT 1"))
            assert _sample("db_pool_connections_in_use", {"pool": pool}) == 2
        assert _sample("db_pool_connections_in_use", {"pool": pool}) == 0
    finally:
        await engine.dispose()


def test_consumer_lag_is_what_the_partition_holds_beyond_the_position(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    try:
        topic = f"lag-{uuid.uuid4().hex[:8]}"
        broker.produce(topic, [b"m-%d" % i for i in range(5)])
        partition = TopicPartition(topic, 0)
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, enable_auto_commit=False, max_poll_records=2
        )
        group = f"g-{uuid.uuid4().hex[:6]}"
        lag = LagGauge(group, every_s=0)
        labels = {"group": group, "topic": topic, "partition": "0"}
        try:
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            read = poll_count(consumer, 2)
            lag.update(consumer)
            assert _sample("kafka_consumer_lag", labels) == 3
            read += poll_count(consumer, 5 - read)
            lag.update(consumer)
            assert _sample("kafka_consumer_lag", labels) == 0
            lag.clear()
            assert _sample("kafka_consumer_lag", labels) is None
        finally:
            consumer.close()
    finally:
        broker.procs.stop("kafka", sig=signal.SIGKILL)
