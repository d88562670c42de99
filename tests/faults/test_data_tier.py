"""The fault mesh's own data servers lost or restarted (never the machine's: its data tier is
private): sessions flushed from Redis mean 401, not 500; a PostgreSQL restart is 503 while it
lasts and then nothing, with no service restarted."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from devdata import demo
from meshctl import supervisor
from meshkit import services
from tests.faults.harness import OK, SHAPED_503, FaultMesh, json_outcome, until
from tests.faults.streams import Ledger, Listener, demo_tracks, new_listener, new_sessions, session_events

ROUTES = ("/v1/me", f"/v1/tracks/{demo.DEMO_TRACK_ID}", "/v1/me/playlists", "/v1/me/player/recently-played")


@pytest.fixture
def listener(healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[Listener]:
    found = new_listener(healthy_mesh, new_account)
    yield found
    found.client.close()


def test_sessions_flushed_from_redis_are_401_never_500(
    healthy_mesh: FaultMesh, listener: Listener, login: Callable[[str, str], str]
) -> None:
    fm = healthy_mesh
    assert all(listener.client.get(route).status_code == 200 for route in ROUTES)
    client = fm.redis()
    try:
        assert client.dbsize() > 0
        client.flushall()
        assert client.dbsize() == 0
    finally:
        client.close()
    for route in ROUTES:
        reply = listener.client.get(route)
        assert reply.status_code == 401, (route, reply.status_code, reply.text)
        error = reply.json()["error"]
        assert error["status"] == 401 and error["message"], reply.text
    with grpc.insecure_channel(fm.mesh.grpc_target) as channel:
        signed_in = (("authorization", listener.client.headers["authorization"]),)
        for call in (
            lambda: auth_pb2_grpc.AuthServiceStub(channel).GetMe(
                auth_pb2.GetMeRequest(), metadata=signed_in, timeout=10
            ),
            lambda: catalog_pb2_grpc.CatalogServiceStub(channel).GetTrack(
                catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID), metadata=signed_in, timeout=10
            ),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    # Signing in again is all it takes.
    fresh = login("demo@example.com", "demo-password")
    again = httpx.get(fm.mesh.envoy_url + "/v1/me", headers={"authorization": f"Bearer {fresh}"}, timeout=10)
    assert again.status_code == 200, again.text


def test_postgres_restarted_services_recover_without_a_restart(
    healthy_mesh: FaultMesh, listener: Listener
) -> None:
    fm = healthy_mesh
    tracks = demo_tracks(fm, 2)
    ledger = Ledger.open(fm, listener, tracks)
    before = {name: fm.started(name) for name in services.PROCESSES}
    restarts = {name: s.restarts for name, s in supervisor.read_state(fm.run_dir).items()}
    ledger.sessions = new_sessions(tracks, 2)
    assert listener.report(session_events(ledger.sessions)).status_code == 200

    fm.stop_postgres()
    try:
        # Whatever needs the database answers 503 in Spotify's shape, or still 200 (Redis, caches).
        outcomes = {route: json_outcome(listener.client.get(route)) for route in ROUTES}
        assert set(outcomes.values()) <= {OK, SHAPED_503}, outcomes
        assert SHAPED_503 in outcomes.values(), outcomes
        # Events are still taken (they go to Kafka); counting them waits for the database.
        during = new_sessions(tracks, 2)
        ledger.sessions.extend(during)
        reply = listener.report(session_events(during))
        assert reply.status_code == 200, reply.text
    finally:
        fm.start_postgres()
    until(
        lambda: all(json_outcome(listener.client.get(route)) == OK for route in ROUTES),
        "every route to answer again",
        30,
    )
    after = new_sessions(tracks, 2)
    ledger.sessions.extend(after)
    assert listener.report(session_events(after)).status_code == 200
    assert ledger.settle() == ledger.expected()
    # No process was restarted: the same pids, and the supervisor counted nothing new.
    assert {name: fm.started(name) for name in services.PROCESSES} == before
    now = {name: s.restarts for name, s in supervisor.read_state(fm.run_dir).items()}
    assert {name: now[name] for name in services.PROCESSES} == {
        name: restarts[name] for name in services.PROCESSES
    }
