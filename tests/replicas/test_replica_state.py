"""State that lives in each process, kept the same on every replica (`make test-replicas`).

rec_svc's live index is per process, and the consumer group gives each catalog change to one
replica only: the others must learn of it from rec.tracks (rec_svc.reloading), or a listener's
radio would depend on which replica answered. An index version the batch job activates is loaded
by every replica, not only the one a reload call happened to reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import httpx
import sqlalchemy as sa
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from devdata import demo
from meshctl import mesh
from meshkit import ids
from tests.e2e.walk import recommendations_built
from tests.support import until


def _tracks_index(replica: mesh.Replica) -> rec_pb2.IndexStatus:
    """The tracks index the replica serves: its version and how many tracks it holds."""
    admin = (("x-user-id", ids.encode(uuid.uuid4())), ("x-user-roles", "admin"))
    with grpc.insecure_channel(f"127.0.0.1:{replica.internal_port}") as channel:
        status = rec_pb2_grpc.RecommendationServiceStub(channel).GetIndexStatus(
            rec_pb2.GetIndexStatusRequest(), metadata=admin, timeout=10
        )
    return next(index for index in status.indexes if index.name == "tracks")


def test_a_track_added_live_reaches_every_rec_replica(
    running_mesh: mesh.Mesh, envoy_client: Callable[..., httpx.Client], admin_token: str
) -> None:
    replicas = running_mesh.layout.replicas("rec_svc")
    assert len(replicas) >= 2, "this suite needs MESH_REPLICAS=2 (make test-replicas)"
    recommendations_built(running_mesh)
    admin = envoy_client()
    admin.headers["authorization"] = f"Bearer {admin_token}"
    album = admin.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}").json()["album"]["id"]
    # Nothing may ask rec about the new track before the check: a request for an unknown track
    # fetches it from catalog and adds it to that replica's index itself.
    sizes = {r.name: _tracks_index(r).size for r in replicas}
    created = admin.post(
        "/api/catalog/tracks",
        json={"request_id": uuid.uuid4().hex, "album_id": album, "name": "Replica Sync", "track_number": 99},
    )
    assert created.status_code == 200, created.text

    # One replica consumed the change; every one must hold the new track within a few syncs.
    def grown() -> dict[str, int] | None:
        now = {r.name: _tracks_index(r).size - sizes[r.name] for r in replicas}
        return now if all(now.values()) else None

    assert set(until(grown, "every rec replica to add the new track", 30, interval=0.5).values()) == {1}


def test_an_activated_index_version_is_served_by_every_rec_replica(
    running_mesh: mesh.Mesh, database_engine: sa.Engine
) -> None:
    replicas = running_mesh.layout.replicas("rec_svc")
    assert len(replicas) >= 2, "this suite needs MESH_REPLICAS=2 (make test-replicas)"
    mesh.build_recommendations(running_mesh)  # ends with a reload asked of every replica
    with database_engine.connect() as connection:
        active = connection.execute(
            sa.text("SELECT version FROM rec.index_versions WHERE active AND kind = 'tracks'")
        ).scalar_one()
    assert {_tracks_index(r).version for r in replicas} == {active}
