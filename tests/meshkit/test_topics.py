"""The topic registry is what the broker, the producers and production's manifests agree on."""

from __future__ import annotations

from pathlib import Path

import yaml

from meshkit import kafka, topics
from meshkit.config import PROJECT_ROOT

PROD_KAFKA = PROJECT_ROOT / "k8s" / "overlays" / "prod" / "kafka.yaml"


def _kafka_topics(path: Path) -> dict[str, dict]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {
        doc["spec"].get("topicName", doc["metadata"]["name"]): doc["spec"]
        for doc in docs
        if doc["kind"] == "KafkaTopic"
    }


def test_production_declares_exactly_the_registered_topics() -> None:
    declared = _kafka_topics(PROD_KAFKA)
    assert sorted(declared) == sorted(topic.name for topic in topics.ALL)
    for topic in topics.ALL:
        spec = declared[topic.name]
        assert spec["partitions"] >= topic.partitions, topic.name
        # Three copies of every record, two of them in sync before a produce is acknowledged.
        assert spec["replicas"] >= 3, topic.name
        assert spec["config"]["min.insync.replicas"] >= 2, topic.name


def test_the_local_mesh_creates_every_registered_topic() -> None:
    assert {topic.name: topic.partitions for topic in topics.ALL} == kafka.TOPICS
    assert len({topic.name for topic in topics.ALL}) == len(topics.ALL)
