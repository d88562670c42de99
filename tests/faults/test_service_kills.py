"""Each process of the mesh killed (SIGKILL) under load through Envoy, and brought back by the
supervisor with no manual step.

While a service is down its routes answer 503 in Spotify's error shape (JSON) or UNAVAILABLE
(gRPC), never anything else; routes that do not need it keep answering 200; once the supervisor
restarted it, its routes answer again within seconds. Writes acknowledged during the fault are
all there afterwards, and a write refused with 503 is retried with the same idempotency key and
counted once. With auth_svc down every authenticated route fails closed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from devdata import demo
from meshctl import envoy_config, supervisor
from meshkit import services
from meshkit.config import PROJECT_ROOT
from tests.faults.harness import (
    NO_CONNECTION,
    OK,
    SHAPED_503,
    UNAVAILABLE,
    FaultMesh,
    Load,
    Probe,
    guarded,
    json_outcome,
    until,
)
from tests.faults.streams import Ledger, Listener, demo_tracks, new_listener, new_sessions, session_events

# How soon after the restarted process serves its routes must answer again (Envoy's health check
# runs every 5 s locally).
RECOVERY_S = 15.0


@dataclass
class Writes:
    """Acknowledged writes of the load: sessions reported and tracks saved."""

    listener: Listener
    ledger: Ledger
    tracks: list[str]
    refused: list[list[tuple[str, object]]] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self) -> str:
        sessions = new_sessions(self.ledger.tracks, 1)
        reply = self.listener.report(session_events(sessions))
        outcome = json_outcome(reply)
        with self.lock:
            self.ledger.sessions.extend(sessions)
            if outcome != OK:
                self.refused.append(sessions)  # type: ignore[arg-type]
        return outcome

    def save(self) -> str:
        track = self.tracks[len(self.saved) % len(self.tracks)]
        reply = self.listener.client.put("/v1/me/library", params={"uris": f"spotify:track:{track}"})
        outcome = json_outcome(reply)
        if outcome == OK:
            with self.lock:
                self.saved.append(track)
        return outcome


def probes_for(fm: FaultMesh, listener: Listener, writes: Writes) -> list[Probe]:
    client = listener.client
    token = client.headers["authorization"]
    channel = grpc.insecure_channel(fm.mesh.grpc_target)
    signed_in = (("authorization", token),)
    catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    stream = client.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID})
    assert stream.status_code == 200, stream.text
    media_url = stream.json()["url"]
    media = httpx.Client(timeout=10)

    def grpc_ok(call: Callable[[], object]) -> Callable[[], str]:
        def run() -> str:
            call()
            return OK

        return run

    return [
        Probe("GET /v1/me", frozenset({"auth_svc"}), lambda: json_outcome(client.get("/v1/me"))),
        Probe(
            "gRPC GetMe",
            frozenset({"auth_svc"}),
            grpc_ok(lambda: auth.GetMe(auth_pb2.GetMeRequest(), metadata=signed_in, timeout=10)),
        ),
        Probe(
            "GET /v1/tracks/{id}",
            frozenset({"catalog_svc"}),
            lambda: json_outcome(client.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}")),
        ),
        Probe(
            "gRPC GetTrack",
            frozenset({"catalog_svc"}),
            grpc_ok(
                lambda: catalog.GetTrack(
                    catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID), metadata=signed_in, timeout=10
                )
            ),
        ),
        Probe(
            "GET /v1/me/playlists",
            frozenset({"library_svc"}),
            lambda: json_outcome(client.get("/v1/me/playlists")),
        ),
        Probe("PUT /v1/me/library", frozenset({"library_svc", "catalog_svc"}), writes.save),
        Probe(
            "GET /v1/me/player",
            frozenset({"playback_svc"}),
            lambda: json_outcome(client.get("/v1/me/player"), (200, 204)),
        ),
        Probe("POST /api/playback/events", frozenset({"playback_svc"}), writes.report),
        Probe(
            "GET /v1/recommendations/available-genre-seeds",
            frozenset({"rec_svc", "catalog_svc"}),
            lambda: json_outcome(client.get("/v1/recommendations/available-genre-seeds")),
        ),
        Probe(
            "GET /media/ (signed URL)",
            frozenset({"media_svc"}),
            lambda: json_outcome(media.get(media_url, headers={"range": "bytes=0-1023"}), (200, 206)),
        ),
    ]


@pytest.fixture
def listener(healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[Listener]:
    found = new_listener(healthy_mesh, new_account)
    yield found
    found.client.close()


def _status_line(fm: FaultMesh, name: str) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "meshctl", "status", "--run-dir", str(fm.run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    ).stdout
    return next(line for line in shown.splitlines() if line.startswith(f"{name} "))


@pytest.mark.parametrize(
    "victim_name", ["catalog_svc", "playback_svc", "library_svc", "auth_svc", "rec_svc", "media_svc", "envoy"]
)
def test_killed_under_load_answers_503_then_recovers_on_its_own(
    victim_name: str, healthy_mesh: FaultMesh, listener: Listener
) -> None:
    fm = healthy_mesh
    tracks = demo_tracks(fm, 3)
    writes = Writes(listener, Ledger.open(fm, listener, tracks), [t.id for t in tracks])
    probes = probes_for(fm, listener, writes)
    load = Load(probes)
    load.start()
    try:
        started = time.monotonic()
        until(lambda: len(load.since(started)) >= 4 * len(probes), "a round of the load before the kill")
        before = load.since(started)
        assert {o for _, _, o in before} == {OK}, [r for r in before if r[2] != OK]

        victim = fm.kill(victim_name)
        killed_at = time.monotonic()
        fm.wait_dead(victim)
        restarted = fm.wait_restarted(victim)
        serving_at = time.monotonic()
        everything = {p.name for p in probes}
        until(lambda: load.last_ok(everything), "every route to answer again", RECOVERY_S + 10)
        recovered_at = time.monotonic()
        until(lambda: len(load.since(recovered_at)) >= 2 * len(probes), "a round of the load after recovery")
    finally:
        load.stop()

    assert recovered_at - serving_at <= RECOVERY_S, (
        f"recovered {recovered_at - serving_at:.1f}s after serving"
    )
    during = load.since(killed_at, recovered_at)
    affected = {p.name for p in probes if victim_name in p.needs or victim_name in ("envoy", "auth_svc")}
    if victim_name == "auth_svc":
        affected -= {"GET /media/ (signed URL)"}  # signed URLs need no session
    # Without Envoy nothing answers: JSON clients cannot connect, gRPC clients get UNAVAILABLE.
    allowed = {NO_CONNECTION, UNAVAILABLE} if victim_name == "envoy" else {SHAPED_503, UNAVAILABLE}
    wrong = [r for r in during if r[2] != OK and (r[1] not in affected or r[2] not in allowed)]
    assert wrong == [], wrong
    refused = {name for _, name, outcome in during if outcome != OK}
    assert refused, "the kill was never seen by a client"
    assert refused <= affected
    after = load.since(recovered_at)
    assert {o for _, _, o in after} == {OK}, [r for r in after if r[2] != OK]

    # The restart was logged and `make status` shows it.
    log = fm.procs.log_path(supervisor.NAME).read_text()
    assert f"{victim_name} (pid {victim.pid}) killed by SIGKILL" in log
    assert f"{victim_name} restarted: pid {restarted.pid}" in log
    line = _status_line(fm, victim_name)
    assert f"pid {restarted.pid}" in line and "running" in line and "last exit: killed by SIGKILL" in line

    # Acknowledged writes survived; refused ones, retried with the same keys, count once.
    for sessions in writes.refused:
        retried = listener.report(session_events(sessions))  # type: ignore[arg-type]
        assert retried.status_code == 200, retried.text
    assert writes.ledger.settle() == writes.ledger.expected()
    saved = listener.client.get(
        "/v1/me/library/contains", params={"uris": ",".join(f"spotify:track:{t}" for t in set(writes.saved))}
    )
    assert saved.status_code == 200 and all(saved.json()), saved.text


def _http_rules(method: object) -> list[tuple[str, str, bool]]:
    """(verb, path, has body) of each HTTP binding of a method, path parameters filled in."""
    rule = method.options.Extensions[annotations_pb2.http]  # type: ignore[attr-defined]
    bindings = [rule, *rule.additional_bindings]
    found = []
    for binding in bindings:
        verb = binding.WhichOneof("pattern")
        if verb is None or verb == "custom":
            continue
        path = re.sub(r"\{[^}]+\}", "0RtO16cfzmPUWtZ8Ys5hka", getattr(binding, verb))
        found.append((verb.upper(), path, bool(binding.body)))
    return found


def test_auth_down_every_authenticated_route_fails_closed(
    healthy_mesh: FaultMesh, listener: Listener
) -> None:
    """auth_svc answers ext_authz: without it no route that needs a session lets anyone through.

    Its restart is held back by killing it again whenever the supervisor brings it back, so the
    whole walk happens with auth down.
    """
    fm = healthy_mesh
    methods = envoy_config.rpc_methods(PROJECT_ROOT / "gen" / "descriptor.binpb")
    bearer = {"authorization": listener.client.headers["authorization"]}
    channel = grpc.insecure_channel(fm.mesh.grpc_target)
    victim = fm.kill("auth_svc")
    fm.wait_dead(victim)
    stop = threading.Event()

    def keep_down() -> None:
        while not stop.is_set():
            now = fm.procs.get("auth_svc")
            if now is not None and now.pid != victim.pid and now.alive():
                fm.kill("auth_svc")
            time.sleep(0.02)

    holder = threading.Thread(target=keep_down, daemon=True)
    holder.start()
    walked: dict[str, str] = {}
    try:
        with httpx.Client(base_url=fm.mesh.envoy_url, timeout=10, headers=bearer) as client:
            for service in services.SERVICES:
                for full in service.public_grpc:
                    for method in methods[full]:
                        path = f"/{full}/{method.name}"
                        policy = services.edge_policy(path, envoy_config.has_http_rule(method))
                        if policy in (services.EdgePolicy.INTERNAL,):
                            continue
                        if policy is not services.EdgePolicy.GRPC_ONLY:
                            for verb, url, body in _http_rules(method):
                                reply = client.request(verb, url, json={} if body else None)
                                walked[f"{verb} {url}"] = json_outcome(reply)
                        if method.client_streaming:
                            continue
                        call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
                        walked[f"gRPC {path}"] = guarded(
                            lambda c=call: (c(b"", metadata=tuple(bearer.items()), timeout=10), OK)[1]
                        )()
    finally:
        stop.set()
        holder.join(10)
        channel.close()
    assert len(walked) > 50
    refused = {
        route: outcome for route, outcome in walked.items() if outcome not in (SHAPED_503, UNAVAILABLE)
    }
    assert refused == {}, refused
    fm.wait_restarted(victim)
