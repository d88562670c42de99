"""docs/scale.md shows what bench.capacity_model computes from the committed measurements, and the
production manifests follow the model where they encode one of its figures."""

from __future__ import annotations

from bench import capacity_model
from meshctl import k8s
from meshkit import topics


def test_the_documented_table_is_the_models() -> None:
    inputs, ann = capacity_model.load()
    table = capacity_model.render(capacity_model.model(inputs, ann), inputs)
    text = capacity_model.SCALE_DOC.read_text()
    documented = text.split(capacity_model.BEGIN)[1].split(capacity_model.END)[0].strip()
    assert documented == table, "stale: run python -m bench.capacity_model --write"


def test_every_route_the_model_sizes_was_measured() -> None:
    inputs, _ = capacity_model.load()
    assert set(capacity_model.PER_DAU) <= set(inputs["cpu_ms_per_unit"])
    assert all(value > 0 for value in inputs["cpu_ms_per_unit"].values())


def test_prods_topics_keep_the_models_retention_and_playback_events_its_partitions() -> None:
    inputs, ann = capacity_model.load()
    rows = capacity_model.model(inputs, ann)
    (partitions,) = [r for r in rows if r.tier == "Kafka" and "partitions" in r.figure]
    declared = {d["spec"]["topicName"]: d["spec"] for d in k8s.documents("prod") if d["kind"] == "KafkaTopic"}
    retention_ms = capacity_model.KAFKA_RETENTION_DAYS * 86_400_000
    for topic in topics.ALL:
        assert int(declared[topic.name]["config"]["retention.ms"]) == retention_ms, topic.name
        assert declared[topic.name]["replicas"] == capacity_model.KAFKA_REPLICATION, topic.name
    assert declared[topics.PLAYBACK_EVENTS.name]["partitions"] == int(partitions.value.replace(",", ""))
