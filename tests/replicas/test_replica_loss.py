"""One replica of each service killed (SIGKILL) under load, on a mesh of two replicas per service
(`make test-replicas`).

With another replica left, a listener must not notice on a read: Envoy retries reads (and every
request that never reached a service) on the other replica, services retry their own reads of
each other there, and ext_authz asks another auth_svc. A write caught on the dying replica may
fail, but only cleanly (503 in Spotify's shape, or UNAVAILABLE), and the client's retry with the
same idempotency key then succeeds and counts once.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
import sqlalchemy as sa
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from devdata import demo
from meshctl import mesh, supervisor
from meshctl.processes import ProcessTable
from meshkit import ids
from meshkit.services import PROCESSES
from tests.faults.harness import OK, SHAPED_503, UNAVAILABLE, Load, Probe, guarded, json_outcome
from tests.support import until

# A counted session: a start, then progress past the 30 s rule (or to the end of a shorter track).
COUNTS_AT_MS = 31_000


class Reports:
    """Playback reports with their own idempotency keys, and the ones refused (to retry)."""

    def __init__(self, client: httpx.Client, track_id: str, duration_ms: int) -> None:
        self.client, self.track_id, self.duration_ms = client, track_id, duration_ms
        self.keys: list[str] = []
        self.refused: list[str] = []

    def events(self, key: str) -> list[dict[str, object]]:
        common = {"idempotency_key": key, "track_id": self.track_id, "device_type": "automobile"}
        position = min(COUNTS_AT_MS, self.duration_ms)
        progress = {"event": "progress", "position_ms": position, "track_duration_ms": self.duration_ms}
        return [{**common, "event": "start"}, {**common, **progress}]

    def report(self) -> str:
        key = f"replica-{uuid.uuid4().hex}"
        self.keys.append(key)
        outcome = json_outcome(self.client.post("/api/playback/events", json={"events": self.events(key)}))
        if outcome != OK:
            self.refused.append(key)
        return outcome


def envoy_retries(m: mesh.Mesh, cluster: str) -> int:
    """How many times Envoy retried a request to `cluster` on another endpoint so far."""
    stats = httpx.get(
        f"http://127.0.0.1:{m.layout.envoy_admin_port}/stats",
        params={"filter": f"^cluster\\.{cluster}\\.upstream_rq_retry$"},
        timeout=5,
    )
    assert stats.status_code == 200, stats.text
    return int(stats.text.strip().rpartition(":")[2] or 0)


@pytest.fixture
def listener(
    running_mesh: mesh.Mesh, new_account: Callable[..., tuple[str, str, str]]
) -> Iterator[httpx.Client]:
    assert running_mesh.layout.replica_count >= 2, "this suite needs MESH_REPLICAS=2 (make test-replicas)"
    _email, _password, token = new_account("Replica Listener")
    with httpx.Client(
        base_url=running_mesh.envoy_url, timeout=30, headers={"authorization": f"Bearer {token}"}
    ) as client:
        yield client


def read_probes(m: mesh.Mesh, client: httpx.Client) -> list[Probe]:
    """Reads that, between them, reach every service (and, through them, each other)."""
    token = client.headers["authorization"]
    catalog = catalog_pb2_grpc.CatalogServiceStub(grpc.insecure_channel(m.grpc_target))
    stream = client.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID})
    assert stream.status_code == 200, stream.text
    media = httpx.Client(timeout=10)
    media_url = stream.json()["url"]

    def get_track() -> str:
        request = catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID)
        catalog.GetTrack(request, metadata=(("authorization", token),), timeout=10)
        return OK

    def json(path: str, **params: str) -> Callable[[], str]:
        return lambda: json_outcome(client.get(path, params=params), (200, 204))

    return [
        Probe("GET /v1/me", frozenset({"auth_svc"}), json("/v1/me")),
        Probe("GET /v1/tracks/{id}", frozenset({"catalog_svc"}), json(f"/v1/tracks/{demo.DEMO_TRACK_ID}")),
        Probe("gRPC GetTrack", frozenset({"catalog_svc"}), get_track),
        Probe("GET /v1/me/playlists", frozenset({"library_svc"}), json("/v1/me/playlists")),
        Probe("GET /v1/me/player", frozenset({"playback_svc"}), json("/v1/me/player")),
        Probe(
            "GET /api/playback/stream",
            frozenset({"playback_svc", "catalog_svc"}),
            json("/api/playback/stream", track_id=demo.DEMO_TRACK_ID),
        ),
        Probe(
            "GET /v1/recommendations/available-genre-seeds",
            frozenset({"rec_svc", "catalog_svc"}),
            json("/v1/recommendations/available-genre-seeds"),
        ),
        Probe(
            "GET /media/ (signed URL)",
            frozenset({"media_svc"}),
            lambda: json_outcome(media.get(media_url, headers={"range": "bytes=0-1023"}), (200, 206)),
        ),
    ]


@pytest.mark.parametrize("service", PROCESSES)
def test_one_replica_killed_costs_reads_nothing_and_writes_at_most_a_retry(
    service: str,
    running_mesh: mesh.Mesh,
    procs: ProcessTable,
    listener: httpx.Client,
    database_engine: sa.Engine,
) -> None:
    m = running_mesh
    victim_replica = m.layout.replicas(service)[1]
    track = listener.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}").json()
    reports = Reports(listener, demo.DEMO_TRACK_ID, int(track["duration_ms"]))
    reads = read_probes(m, listener)
    load = Load([*reads, Probe("POST /api/playback/events", frozenset({"playback_svc"}), reports.report)])
    retries_before = envoy_retries(m, service)
    load.start()
    try:
        victim = procs.get(victim_replica.name)
        assert victim is not None and victim.alive(), f"{victim_replica.name} is not running"
        until(lambda: len(load.since(0)) >= 3 * len(load.probes), "a round of the load before the kill")
        assert {o for _, _, o in load.records} == {OK}, [r for r in load.records if r[2] != OK]

        os.kill(victim.pid, signal.SIGKILL)
        until(lambda: not victim.alive(), f"{victim_replica.name} to exit")

        def replaced() -> bool:
            now = procs.get(victim_replica.name)
            return now is not None and now.pid != victim.pid and now.alive() and mesh.serving(victim_replica)

        until(replaced, f"the supervisor to bring {victim_replica.name} back", 60)
        # And a while on the restarted replica, which Envoy's health check lets in again.
        settled = len(load.records)
        until(
            lambda: len(load.records) >= settled + 4 * len(load.probes), "a round of load after the restart"
        )
    finally:
        load.stop()

    state = supervisor.read_state(m.layout.run_dir)[victim_replica.name]
    assert state.restarts >= 1 and "SIGKILL" in state.last_exit, state

    failed_reads = [r for r in load.records if r[1] != "POST /api/playback/events" and r[2] != OK]
    assert failed_reads == [], failed_reads
    # Envoy did meet the dead replica and answered from the other one: the kill was felt.
    assert envoy_retries(m, service) > retries_before
    writes = [r for r in load.records if r[1] == "POST /api/playback/events"]
    unclean = [r for r in writes if r[2] not in (OK, SHAPED_503, UNAVAILABLE)]
    assert unclean == [], unclean

    # A refused write, sent again with the same keys, is accepted; every session counts once.
    for key in reports.refused:
        retried = guarded(
            lambda key=key: json_outcome(  # type: ignore[misc]
                listener.post("/api/playback/events", json={"events": reports.events(key)})
            )
        )()
        assert retried == OK, (key, retried)
    user_id = ids.decode(listener.get("/v1/me").json()["id"])

    def counted() -> dict[str, int] | None:
        with database_engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT idempotency_key, count(*) FROM playback.counted_streams"
                    " WHERE user_id = :user GROUP BY idempotency_key"
                ),
                {"user": user_id},
            ).all()
        # Stored as `<user id>:<client's key>`: one listener's keys never collide with another's.
        found = {str(key).partition(":")[2]: int(n) for key, n in rows}
        last[:] = [found]
        return found if set(found) == set(reports.keys) else None

    last: list[dict[str, int]] = []
    try:
        per_key = until(counted, "every reported session to be counted", 60)
    except AssertionError:
        found = last[0] if last else {}
        missing, extra = set(reports.keys) - set(found), set(found) - set(reports.keys)
        raise AssertionError(
            f"{len(reports.keys)} sessions reported, {len(found)} counted; not counted: {sorted(missing)[:5]}"
            f" ({len(missing)}), counted but never reported: {sorted(extra)[:5]}; refused: {reports.refused}"
        ) from None
    assert set(per_key.values()) == {1}, {k: n for k, n in per_key.items() if n != 1}
