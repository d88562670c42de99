"""Bad input on every JSON route, through Envoy: a 4xx in Spotify's error shape, and nothing stored.

The routes come from the OpenAPI document (gen/openapi.json), so a new route is covered the day it
gets an HTTP rule: every route that takes a body gets malformed and lenient-only JSON, a bare
scalar, a wrong content type and an oversized body; every route with a path parameter gets ids
with control characters; every enum a body carries gets a value it does not have. The database is
compared before and after each route's bad requests (tests/e2e/db_state.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from devdata import demo
from meshctl import mesh
from meshctl.protos import GEN_DIR
from meshkit import topics
from playback_svc.events import MAX_BATCH
from tests import kafka_tail
from tests.e2e import db_state

pytestmark = pytest.mark.e2e

DOCUMENT: dict[str, Any] = json.loads((GEN_DIR / "openapi.json").read_text())
OPERATIONS = [
    (verb.upper(), path, operation)
    for path, verbs in DOCUMENT["paths"].items()
    for verb, operation in verbs.items()
]
WITH_BODY = [(v, p, o) for v, p, o in OPERATIONS if "requestBody" in o]
WITH_PATH_ID = [(v, p, o) for v, p, o in OPERATIONS if "{" in p]
# Bigger than the edge's buffer limit (1 MiB), as valid JSON.
OVERSIZED = json.dumps({"name": "x" * (2 * 1024 * 1024)})
BAD_BODIES = {
    "truncated": '{"name": "x",',
    "single-quoted": "{'name': 'x'}",
    "unquoted key": '{name: "x"}',
    "trailing comma": '{"name": "x",}',
    "raw control character": '{"name": "a\tb"}',
    "trailing garbage": '{"name": "x"} x',
    "bare number": "1",
    "bare string": '"x"',
}
CONTROL_IDS = ["abc%00def", "abc%0Adef", "%1F" * 22, "abc%7Fdef"]


def _id(item: tuple[str, str, dict[str, Any]]) -> str:
    return str(item[2]["operationId"])


def assert_spotify_error(reply: httpx.Response, *statuses: int) -> None:
    assert reply.status_code in statuses, (reply.status_code, reply.text[:300])
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    assert reply.json() == {
        "error": {"status": reply.status_code, "message": reply.json()["error"]["message"]}
    }
    assert reply.json()["error"]["message"]


def _concrete(path: str, value: str = demo.DEMO_TRACK_ID) -> str:
    """The path with every parameter filled in (a well-formed id: the body is what is wrong)."""
    out = path
    while "{" in out:
        start = out.index("{")
        out = out[:start] + value + out[out.index("}", start) + 1 :]
    return out


# Routes only these roles may call; everything else is called as the premium listener, so no
# role or plan check answers first and the answers below are about the input.
ADMIN_PREFIXES = ("/api/admin/", "/api/catalog/")


@pytest.fixture(scope="module")
def http(
    running_mesh: mesh.Mesh, admin_token: str, demo_token: str
) -> Iterator[Callable[[str], httpx.Client]]:
    """The client for a route: as the admin under ADMIN_PREFIXES, else as the premium listener."""
    clients = {
        token: httpx.Client(
            base_url=running_mesh.envoy_url, timeout=20, headers={"authorization": f"Bearer {token}"}
        )
        for token in (admin_token, demo_token)
    }

    def client_for(path: str) -> httpx.Client:
        return clients[admin_token if path.startswith(ADMIN_PREFIXES) else demo_token]

    yield client_for
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def snapshots(running_mesh: mesh.Mesh) -> Iterator[db_state.Snapshots]:
    taker = db_state.Snapshots(running_mesh.database_url)
    yield taker
    taker.close()


@contextmanager
def stores_nothing(snapshots: db_state.Snapshots) -> Iterator[None]:
    """Every table as it was before the block (refused requests change nothing)."""
    before = snapshots.take()
    yield
    assert db_state.changed(before, snapshots.take()) == []


@pytest.mark.parametrize("verb,path,operation", WITH_BODY, ids=[_id(o) for o in WITH_BODY])
def test_bad_bodies_are_refused_before_anything_is_stored(
    http: Callable[[str], httpx.Client],
    snapshots: db_state.Snapshots,
    verb: str,
    path: str,
    operation: dict[str, Any],
) -> None:
    url = _concrete(path)
    json_type = {"content-type": "application/json"}
    client = http(path)
    with stores_nothing(snapshots):
        for name, body in BAD_BODIES.items():
            reply = client.request(verb, url, content=body, headers=json_type)
            assert reply.status_code == 400, (name, reply.text[:200])
            assert_spotify_error(reply, 400)
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            reply = client.request(verb, url, content="{}", headers={"content-type": content_type})
            assert_spotify_error(reply, 415)
        reply = client.request(verb, url, content=OVERSIZED, headers=json_type)
        assert_spotify_error(reply, 413)


@pytest.mark.parametrize("verb,path,operation", WITH_PATH_ID, ids=[_id(o) for o in WITH_PATH_ID])
def test_ids_with_control_characters_are_refused(
    http: Callable[[str], httpx.Client],
    snapshots: db_state.Snapshots,
    verb: str,
    path: str,
    operation: dict[str, Any],
) -> None:
    body = (
        {"content": "{}", "headers": {"content-type": "application/json"}}
        if "requestBody" in operation
        else {}
    )
    with stores_nothing(snapshots):
        for bad in CONTROL_IDS:
            reply = http(path).request(verb, _concrete(path, bad), **body)  # type: ignore[arg-type]
            assert_spotify_error(reply, 400, 404)


def _enum_fields(
    schema: dict[str, Any], trail: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(field path, enum schema name) of every enum a request body schema reaches."""
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        target = DOCUMENT["components"]["schemas"][name]
        if "enum" in target:
            yield trail, name
            return
        schema = target
    for key, prop in schema.get("properties", {}).items():
        if len(trail) < 3:
            yield from _enum_fields(prop, (*trail, key))


ENUM_BODIES = [
    (verb, path, operation, field)
    for verb, path, operation in WITH_BODY
    for field, _ in _enum_fields(operation["requestBody"]["content"]["application/json"]["schema"])
]


def test_some_body_carries_an_enum() -> None:
    assert ENUM_BODIES, "no route takes an enum: the unknown-value test below checks nothing"


@pytest.mark.parametrize(
    "verb,path,operation,field",
    ENUM_BODIES,
    ids=[f"{o['operationId']}.{'.'.join(f)}" for _, _, o, f in ENUM_BODIES],
)
def test_unknown_enum_values_are_refused(
    http: Callable[[str], httpx.Client],
    snapshots: db_state.Snapshots,
    verb: str,
    path: str,
    operation: dict[str, Any],
    field: tuple[str, ...],
) -> None:
    target = operation["requestBody"]["content"]["application/json"]["schema"]
    for name in field:
        target = target["properties"][name]
    value: Any = "NOT_A_VALUE"
    if target.get("type") == "array":
        value = [value]
    body: Any = value
    for name in reversed(field):
        body = {name: body}
    with stores_nothing(snapshots):
        reply = http(path).request(verb, _concrete(path, demo.DEMO_USER_ID), json=body)
    assert_spotify_error(reply, 400)
    assert "NOT_A_VALUE" in reply.json()["error"]["message"]


def test_header_names_grpc_cannot_carry_are_dropped(http: Callable[[str], httpx.Client]) -> None:
    reply = http("/v1/me").get("/v1/me", headers={"x|odd": "1", "bad#name": "2"})
    assert reply.status_code == 200, reply.text


def test_report_playback_events_over_the_batch_limit_is_400_and_publishes_nothing(
    running_mesh: mesh.Mesh, demo_token: str
) -> None:
    consumer = kafka_tail.tail(running_mesh.kafka_bootstrap, topics.PLAYBACK_EVENTS.name)
    try:
        partitions = list(consumer.assignment())
        refused = f"over-limit-{uuid.uuid4().hex}"
        marker = f"marker-{uuid.uuid4().hex}"

        def event(key: str) -> dict[str, Any]:
            return {
                "idempotency_key": key,
                "track_id": demo.DEMO_TRACK_ID,
                "event": "start",
                "position_ms": 0,
            }

        with httpx.Client(
            base_url=running_mesh.envoy_url, timeout=20, headers={"authorization": f"Bearer {demo_token}"}
        ) as client:
            over = client.post(
                "/api/playback/events",
                json={"events": [event(f"{refused}-{i}") for i in range(MAX_BATCH + 1)]},
            )
            assert_spotify_error(over, 400)
            assert str(MAX_BATCH) in over.json()["error"]["message"]
            # A batch at the limit is taken: the limit is the only thing wrong above.
            full = client.post("/api/playback/events", json={"events": [event(marker)] * MAX_BATCH})
            assert full.status_code == 200, full.text
        # Everything published up to the marker's batch is read back; none of it is refused's.
        seen: list[str] = []
        for _ in range(40):
            for records in consumer.poll(timeout_ms=500).values():
                seen.extend(r.value.decode("latin-1") for r in records)
            if any(marker in value for value in seen):
                break
        assert any(marker in value for value in seen), "the accepted batch never reached Kafka"
        ends = consumer.end_offsets(partitions)
        for _ in range(40):
            if all(consumer.position(p) >= ends[p] for p in partitions):
                break
            for records in consumer.poll(timeout_ms=500).values():
                seen.extend(r.value.decode("latin-1") for r in records)
        assert all(consumer.position(p) >= ends[p] for p in partitions), "could not read the topic to its end"
        assert not [value for value in seen if refused in value]
    finally:
        consumer.close()
