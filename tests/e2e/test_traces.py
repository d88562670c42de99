"""Distributed tracing on a mesh of its own that exports to a real OTLP/gRPC receiver (this test's,
built from opentelemetry-proto): one stream start through Envoy is one trace, from Envoy's span
through playback_svc, its call to catalog_svc and the SQL under it; a Discover Weekly request
carries the seed's spans with their attributes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from devdata import demo
from meshctl import datatier, mesh
from tests.support import fresh_loopback_address, until

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    kind: int = 0
    links: tuple[tuple[str, str], ...] = ()


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent, with the name of the service that sent it."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            kind=span.kind,
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                        )
                    )
        with self.lock:
            self.spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def find(self, **match: Any) -> list[Span]:
        with self.lock:
            return [
                s
                for s in self.spans
                if all(getattr(s, k, None) == v or s.attributes.get(k) == v for k, v in match.items())
            ]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    spans = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(spans, server)
    port = datatier.free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield spans, f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.fixture(scope="module")
def traced_mesh(receiver: tuple[Receiver, str]) -> Iterator[mesh.Mesh]:
    """A whole mesh (demo data, recommendations built) whose services and Envoy export spans."""
    _, endpoint = receiver
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        with mesh.private_mesh("traces-", audio_tracks=2) as running:
            yield running


def _client(running: mesh.Mesh) -> httpx.Client:
    """A client from a loopback address of its own (login is rate limited per address)."""
    transport = httpx.HTTPTransport(local_address=fresh_loopback_address())
    return httpx.Client(base_url=running.envoy_url, timeout=20, transport=transport)


def _login(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    reply = http.post("/api/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return {"authorization": f"Bearer {reply.json()['access_token']}"}


def test_one_stream_start_is_one_trace_from_envoy_to_sql(
    traced_mesh: mesh.Mesh, receiver: tuple[Receiver, str]
) -> None:
    spans, _ = receiver
    with _client(traced_mesh) as http:
        me = _login(http, "demo@example.com", "demo-password")
        request_id = f"trace-{uuid.uuid4().hex}"
        started = http.get(
            "/api/playback/stream",
            params={"track_id": demo.DEMO_TRACK_ID},
            headers={**me, "x-request-id": request_id},
        )
        assert started.status_code == 200, started.text

    (edge,) = until(
        lambda: spans.find(service="envoy", **{"guid:x-request-id": request_id}), "Envoy's span", 30
    )

    def covered() -> list[Span] | None:
        found = spans.trace(edge.trace_id)
        services = {s.service for s in found}
        sql = [
            s for s in found if s.service == "catalog_svc" and s.attributes.get("db.system") == "postgresql"
        ]
        catalog_call = [s for s in found if s.service == "playback_svc" and "ListTrackAudioFiles" in s.name]
        wanted = {"envoy", "playback_svc", "catalog_svc"} <= services and sql and catalog_call
        return found if wanted else None

    found = until(covered, "the trace to reach catalog's SQL", 30, interval=0.5)
    by_id = {s.span_id: s for s in found}
    # One tree: every span but Envoy's has its parent in the same trace.
    roots = [s for s in found if s.parent_id not in by_id]
    assert [r.service for r in roots] == ["envoy"], roots
    assert any(s.service == "playback_svc" and "GetStreamUrl" in s.name for s in found)


def test_discover_weekly_carries_the_seeds_spans(
    traced_mesh: mesh.Mesh, receiver: tuple[Receiver, str]
) -> None:
    spans, _ = receiver
    email = f"trace-{uuid.uuid4().hex[:10]}@example.com"
    with _client(traced_mesh) as http:
        registered = http.post("/api/auth/register", json={"email": email, "password": "pw-long-enough"})
        assert registered.status_code == 200, registered.text
        user_id = registered.json()["user"]["id"]
        me = _login(http, email, "pw-long-enough")
        mix = http.get("/api/recs/discover-weekly", headers=me)
        assert mix.status_code == 200, mix.text

    (top,) = until(
        lambda: spans.find(name="getRecommendations", **{"user.id": user_id}), "getRecommendations", 30
    )
    children = until(
        lambda: (
            {s.name: s for s in spans.trace(top.trace_id) if s.parent_id == top.span_id}
            if {"fetchListeningHistory", "mlInference"} <= {s.name for s in spans.trace(top.trace_id)}
            else None
        ),
        "fetchListeningHistory and mlInference",
        30,
    )
    assert top.service == "rec_svc"
    assert children["fetchListeningHistory"].attributes["history.count"] == 0  # a new listener
    served = len(mix.json()["tracks"])
    assert served > 0 and children["mlInference"].attributes["recommendations.count"] == served


def test_kafka_produce_is_a_child_span_and_consuming_links_back_to_it(
    traced_mesh: mesh.Mesh, receiver: tuple[Receiver, str]
) -> None:
    """Reported events: the request's trace has the produce; the stream counter's batch span (a
    trace of its own, as one batch has many producers) links to it, and its SQL is its child."""
    spans, _ = receiver
    request_id = f"trace-{uuid.uuid4().hex}"
    key = f"trace-{uuid.uuid4().hex}"
    with _client(traced_mesh) as http:
        me = _login(http, "demo@example.com", "demo-password")
        duration = http.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}", headers=me).json()["duration_ms"]
        common = {"idempotency_key": key, "track_id": demo.DEMO_TRACK_ID, "device_type": "web"}
        events = [
            {**common, "event": "start"},
            {
                **common,
                "event": "progress",
                "position_ms": min(31_000, duration),
                "track_duration_ms": duration,
            },
        ]
        reply = http.post(
            "/api/playback/events", json={"events": events}, headers={**me, "x-request-id": request_id}
        )
        assert reply.status_code == 200, reply.text

    (edge,) = until(
        lambda: spans.find(service="envoy", **{"guid:x-request-id": request_id}), "Envoy's span", 30
    )
    produce = until(
        lambda: [
            s
            for s in spans.trace(edge.trace_id)
            if s.service == "playback_svc" and s.kind == trace_pb2.Span.SPAN_KIND_PRODUCER
        ],
        "the produce span in the request's trace",
        30,
    )
    produced = {(edge.trace_id, s.span_id) for s in produce}

    def consumed() -> list[Span]:
        return [
            s
            for s in spans.find(service="playback_svc")
            if s.kind == trace_pb2.Span.SPAN_KIND_CONSUMER and produced & set(s.links)
        ]

    (batch,) = until(consumed, "the counter's batch span linked to the produce", 30)
    assert batch.name == "playback.events.v1 process"
    assert batch.trace_id != edge.trace_id
    sql = until(
        lambda: [
            s
            for s in spans.trace(batch.trace_id)
            if s.parent_id == batch.span_id and s.attributes.get("db.system") == "postgresql"
        ],
        "the counter's SQL under its batch span",
        30,
    )
    assert sql
