"""What the SDK tests share: clients through a relay of their own, and a track long enough to
switch quality several times in (the demo tracks of the test mesh are six seconds)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from spotify.catalog.v1 import catalog_pb2

from devdata import demo, synth
from meshctl.mesh import Mesh
from meshkit import ids
from sdk.client import MeshClient
from tests.e2e.clients import relayed_from

LONG_TRACK_SECONDS = 20.0
CHUNK = 256 * 1024


@pytest.fixture
def sdk_url(running_mesh: Mesh) -> Iterator[str]:
    """The mesh's Envoy as an SDK reaches it: from a loopback address of the test's own (login is
    limited per client address, and a gRPC client cannot choose its source address)."""
    with relayed_from(running_mesh.grpc_target) as relayed:
        yield f"http://{relayed}"


@pytest.fixture(scope="session")
def long_track(running_mesh: Mesh, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A track of 20 s with its three qualities, ingested by an admin through Envoy."""
    source = tmp_path_factory.mktemp("long-track") / "long.wav"
    synth.synthesize("electronic", seed=11, seconds=LONG_TRACK_SECONDS).write_wav(source)
    data = source.read_bytes()
    with MeshClient(running_mesh.envoy_url, token=admin_token, timeout_s=60) as admin:
        album = admin.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID)).album.id
        track = admin.catalog.CreateTrack(
            catalog_pb2.CreateTrackRequest(
                request_id=uuid.uuid4().hex, album_id=album, name="Long Enough", track_number=90
            )
        )

        def upload() -> Iterator[catalog_pb2.IngestTrackAudioRequest]:
            metadata = catalog_pb2.IngestMetadata(track_id=track.id, filename="long.wav", size=len(data))
            yield catalog_pb2.IngestTrackAudioRequest(metadata=metadata)
            for start in range(0, len(data), CHUNK):
                yield catalog_pb2.IngestTrackAudioRequest(chunk=data[start : start + CHUNK])

        job = admin.catalog.IngestTrackAudio(upload())
        deadline = time.monotonic() + 120
        while job.status not in (catalog_pb2.IngestJob.STATUS_SUCCEEDED, catalog_pb2.IngestJob.STATUS_FAILED):
            assert time.monotonic() < deadline, f"ingest job {job.id} did not finish"
            time.sleep(0.3)
            job = admin.catalog.GetIngestJob(catalog_pb2.GetIngestJobRequest(id=job.id))
        assert job.status == catalog_pb2.IngestJob.STATUS_SUCCEEDED, job.error
    return str(track.id)


@pytest.fixture
def premium(
    sdk_url: str, new_account: Callable[..., tuple[str, str, str]], grant_premium: Callable[[str], str]
) -> Iterator[tuple[MeshClient, str]]:
    """A premium listener's client and user id (every quality is theirs to play)."""
    _, _, token = new_account("SDK Premium")
    user_id = grant_premium(token)
    with MeshClient(sdk_url, token=token) as client:
        yield client, user_id


def counted_keys(engine: sa.Engine, user_id: str) -> list[str]:
    """The user's counted streams, by their stored key (`<user id>:<session key>`), sorted."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT idempotency_key FROM playback.counted_streams WHERE user_id = :u"),
            {"u": ids.decode(user_id)},
        ).all()
    return sorted(str(r[0]) for r in rows)
