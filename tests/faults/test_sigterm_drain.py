"""SIGTERM with a call in flight: the call completes, new calls get UNAVAILABLE (503 through Envoy),
and the process exits within its grace period; the supervisor then starts it again. catalog_svc
drains a write (its edit is stored); every other service drains a read of its own schema."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import httpx
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshctl import datatier
from meshkit import ids
from meshkit.config import Settings
from tests.faults.harness import SHAPED_503, FaultMesh, json_outcome, until
from tests.faults.streams import demo_tracks

GRACE_S = Settings().shutdown_grace_s


def until_refused(fm: FaultMesh, service: str, call: Callable[[grpc.Channel], object]) -> None:
    """Until `call`, sent to `service` itself, is refused with UNAVAILABLE (it is draining)."""
    with grpc.insecure_channel(f"127.0.0.1:{fm.mesh.layout.internal_ports[service]}") as channel:

        def refused() -> bool:
            try:
                call(channel)
            except grpc.RpcError as err:
                return err.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            return False

        until(refused, "new calls to be refused", 5)


def test_sigterm_lets_calls_in_flight_finish_and_refuses_new_ones(
    healthy_mesh: FaultMesh, login: Callable[[str, str], str]
) -> None:
    fm = healthy_mesh
    track = demo_tracks(fm, 1)[0]
    bearer = {"authorization": f"Bearer {login('admin@example.com', 'admin-password')}"}
    admin = httpx.Client(base_url=fm.mesh.envoy_url, timeout=60, headers=bearer)
    original = admin.get(f"/v1/tracks/{track.id}").json()["name"]
    renamed = f"{original} ({uuid.uuid4().hex[:6]})"
    replies: list[httpx.Response] = []
    try:
        with psycopg.connect(datatier.libpq_url(fm.mesh.database_url)) as lock:
            # The edit waits on this row lock: it is in flight, inside catalog_svc, until we let go.
            lock.execute("SELECT 1 FROM catalog.tracks WHERE id = %s FOR UPDATE", (ids.decode(track.id),))
            holder = lock.execute("SELECT pg_backend_pid()").fetchone()
            assert holder is not None
            edit = threading.Thread(
                target=lambda: replies.append(
                    admin.patch(f"/api/catalog/tracks/{track.id}", json={"name": renamed})
                )
            )
            edit.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            until(lambda: fm.scalar(waiting, holder[0]) == 1, "the edit to wait on the held row", 30)

            victim = fm.kill("catalog_svc", signal.SIGTERM)
            termed_at = time.monotonic()
            until_refused(
                fm,
                "catalog_svc",
                lambda channel: catalog_pb2_grpc.CatalogServiceStub(channel).GetTrack(
                    catalog_pb2.GetTrackRequest(id=track.id), timeout=5
                ),
            )
            assert json_outcome(admin.get(f"/v1/tracks/{track.id}")) == SHAPED_503
            assert victim.alive() and not replies, "the call in flight was cut short"
            lock.rollback()
            edit.join(30)
        fm.wait_dead(victim, within=GRACE_S + 5)
        assert time.monotonic() - termed_at <= GRACE_S + 2
        (reply,) = replies
        assert reply.status_code == 200, reply.text
        assert reply.json()["name"] == renamed
        assert fm.scalar("SELECT title FROM catalog.tracks WHERE id = %s", ids.decode(track.id)) == renamed
        fm.wait_restarted(victim)
    finally:
        until(lambda: fm.serving("catalog_svc"), "catalog_svc to serve", 60)
        until(fm.envoy_healthy, "Envoy to see catalog again", 60)
        restored = admin.patch(f"/api/catalog/tracks/{track.id}", json={"name": original})
        assert restored.status_code == 200, restored.text
        admin.close()


@dataclass(frozen=True)
class InFlight:
    """A read through Envoy that waits, inside `service`, on a lock the test holds on `table`."""

    service: str
    table: str
    path: str


READS = [
    InFlight("auth_svc", "auth.users", "/api/admin/users"),
    InFlight("library_svc", "library.playlists", "/v1/me/playlists"),
    InFlight("playback_svc", "playback.listening_history", "/v1/me/player/recently-played"),
    # Genre seeds are catalog's: rec's call waits on its own call to catalog, which waits on the lock
    # (the fault mesh builds no rec index, and what else rec answers needs one).
    InFlight("rec_svc", "catalog.artists", "/v1/recommendations/available-genre-seeds"),
]


@pytest.mark.parametrize("held", READS, ids=[r.service for r in READS])
def test_every_service_drains_on_sigterm(
    healthy_mesh: FaultMesh, login: Callable[[str, str], str], held: InFlight
) -> None:
    fm = healthy_mesh
    bearer = {"authorization": f"Bearer {login('admin@example.com', 'admin-password')}"}
    admin = httpx.Client(base_url=fm.mesh.envoy_url, timeout=60, headers=bearer)
    expected = admin.get(held.path)
    assert expected.status_code == 200, expected.text
    replies: list[httpx.Response] = []
    try:
        with psycopg.connect(datatier.libpq_url(fm.mesh.database_url)) as lock:
            # Even a read of the table waits on this lock: the call is in flight until we let go.
            lock.execute(f"LOCK TABLE {held.table} IN ACCESS EXCLUSIVE MODE")
            holder = lock.execute("SELECT pg_backend_pid()").fetchone()
            assert holder is not None
            read = threading.Thread(target=lambda: replies.append(admin.get(held.path)))
            read.start()
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
                " AND query ILIKE %s"
            )
            table_name = held.table.split(".")[1]
            until(lambda: fm.scalar(waiting, holder[0], f"%{table_name}%") == 1, "the read to wait", 30)

            victim = fm.kill(held.service, signal.SIGTERM)
            termed_at = time.monotonic()
            until_refused(
                fm,
                held.service,
                lambda channel: health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                ),
            )
            assert json_outcome(admin.get(held.path)) == SHAPED_503
            assert victim.alive() and not replies, "the call in flight was cut short"
            lock.rollback()
            read.join(30)
        fm.wait_dead(victim, within=GRACE_S + 5)
        assert time.monotonic() - termed_at <= GRACE_S + 2
        (reply,) = replies
        assert reply.status_code == 200, reply.text
        assert reply.json() == expected.json()
        fm.wait_restarted(victim)
    finally:
        until(lambda: fm.serving(held.service), f"{held.service} to serve", 60)
        until(fm.envoy_healthy, f"Envoy to see {held.service} again", 60)
        admin.close()
