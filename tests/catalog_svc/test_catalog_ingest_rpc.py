"""IngestTrackAudio as a job over real gRPC: an upload becomes files, audio_files rows and features."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc.ingest import encode
from devdata import synth

if TYPE_CHECKING:
    from conftest import People

Stub = catalog_pb2_grpc.CatalogServiceStub
Job = catalog_pb2.IngestJob
CHUNK = 256 * 1024


async def _upload(track_id: str, data: bytes, filename: str = "song.wav") -> AsyncIterator:
    yield catalog_pb2.IngestTrackAudioRequest(
        metadata=catalog_pb2.IngestMetadata(track_id=track_id, filename=filename, size=len(data))
    )
    for start in range(0, len(data), CHUNK):
        yield catalog_pb2.IngestTrackAudioRequest(chunk=data[start : start + CHUNK])


async def _finished(
    catalog: Stub, job_id: str, metadata: tuple, within_s: float = 60
) -> catalog_pb2.IngestJob:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        job = await catalog.GetIngestJob(catalog_pb2.GetIngestJobRequest(id=job_id), metadata=metadata)
        if job.status in (Job.STATUS_SUCCEEDED, Job.STATUS_FAILED):
            return job
        await asyncio.sleep(0.2)
    raise TimeoutError(f"ingest job {job_id} did not finish in {within_s}s")


@pytest.fixture
async def fresh_track(catalog: Stub, people: People) -> catalog_pb2.Track:
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name=f"Ingest {uuid.uuid4().hex[:6]}", artist_ids=[people.artist_a_id]
        ),
        metadata=people.admin.metadata,
    )
    return await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album.id, name="Ingested", track_number=1),
        metadata=people.admin.metadata,
    )


def _wav(tmp_path: Path, genre: str = "rock", seconds: float = 5.0) -> bytes:
    path = tmp_path / "source.wav"
    synth.synthesize(genre, seed=3, seconds=seconds).write_wav(path)
    return path.read_bytes()


async def test_an_owning_artist_ingests_a_wav_into_three_qualities_with_features(
    catalog: Stub, people: People, fresh_track: catalog_pb2.Track, tmp_path: Path, catalog_storage_root: Path
) -> None:
    owner = people.artist_a.metadata
    job = await catalog.IngestTrackAudio(_upload(fresh_track.id, _wav(tmp_path)), metadata=owner)
    assert job.status == Job.STATUS_QUEUED and job.track_id == fresh_track.id
    done = await _finished(catalog, job.id, owner)
    assert (done.status, done.error) == (Job.STATUS_SUCCEEDED, "")

    files = await catalog.ListTrackAudioFiles(
        catalog_pb2.ListTrackAudioFilesRequest(track_id=fresh_track.id, include_seek_points=True),
        metadata=owner,
    )
    by_quality = {f.quality: f for f in files.audio_files}
    expected = {
        catalog_pb2.AUDIO_QUALITY_LOW: 96,
        catalog_pb2.AUDIO_QUALITY_NORMAL: 160,
        catalog_pb2.AUDIO_QUALITY_HIGH: 320,
    }
    for quality, kbps in expected.items():
        stored = by_quality[quality]
        assert stored.bitrate_kbps == kbps
        assert stored.storage_path == f"tracks/{fresh_track.id}_{kbps}kbps.ogg"
        assert encode.nominal_bitrate(catalog_storage_root / stored.storage_path) == kbps * 1000
        assert stored.seek_points and stored.seek_points[0].byte_offset >= 0
    assert catalog_pb2.AUDIO_QUALITY_PREVIEW in by_quality

    features = await catalog.GetAudioFeatures(
        catalog_pb2.GetAudioFeaturesRequest(id=fresh_track.id), metadata=owner
    )
    assert features.tempo > 0 and 0 <= features.energy <= 1
    track = await catalog.GetTrack(catalog_pb2.GetTrackRequest(id=fresh_track.id), metadata=owner)
    assert 4500 <= track.duration_ms <= 5500
    assert track.preview_url.endswith(f"/media/tracks/{fresh_track.id}_preview.ogg")


@pytest.mark.parametrize(
    ("payload", "needle"), [(b"", "empty"), (b"<html>not audio</html>" * 10, "not audio")]
)
async def test_empty_or_non_audio_uploads_are_rejected_and_store_nothing(
    catalog: Stub,
    people: People,
    fresh_track: catalog_pb2.Track,
    payload: bytes,
    needle: str,
    catalog_storage_root: Path,
) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await catalog.IngestTrackAudio(_upload(fresh_track.id, payload), metadata=people.admin.metadata)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (err.value.details() or "")
    files = await catalog.ListTrackAudioFiles(
        catalog_pb2.ListTrackAudioFilesRequest(track_id=fresh_track.id), metadata=people.admin.metadata
    )
    assert list(files.audio_files) == []
    assert not list((catalog_storage_root / "tracks").glob(f"{fresh_track.id}*"))


async def test_a_corrupt_upload_fails_the_job_with_its_reason_and_stores_nothing(
    catalog: Stub, people: People, fresh_track: catalog_pb2.Track, tmp_path: Path, catalog_storage_root: Path
) -> None:
    truncated = _wav(tmp_path)[:2000]  # a WAV header promising far more data than follows
    job = await catalog.IngestTrackAudio(_upload(fresh_track.id, truncated), metadata=people.admin.metadata)
    done = await _finished(catalog, job.id, people.admin.metadata)
    assert done.status == Job.STATUS_FAILED and done.error
    files = await catalog.ListTrackAudioFiles(
        catalog_pb2.ListTrackAudioFilesRequest(track_id=fresh_track.id), metadata=people.admin.metadata
    )
    assert list(files.audio_files) == []
    assert not list((catalog_storage_root / "tracks").glob(f"{fresh_track.id}*"))


async def test_only_admins_and_owning_artists_may_ingest(
    catalog: Stub, people: People, fresh_track: catalog_pb2.Track, tmp_path: Path
) -> None:
    data = _wav(tmp_path, seconds=2)
    for person, code in (
        (people.artist_b, grpc.StatusCode.PERMISSION_DENIED),
        (people.listener, grpc.StatusCode.PERMISSION_DENIED),
    ):
        with pytest.raises(aio.AioRpcError) as err:
            await catalog.IngestTrackAudio(_upload(fresh_track.id, data), metadata=person.metadata)
        assert err.value.code() == code
    with pytest.raises(aio.AioRpcError) as err:
        await catalog.IngestTrackAudio(_upload(fresh_track.id, data))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_tracks_are_not_found(catalog: Stub, people: People, tmp_path: Path) -> None:
    from meshkit import ids

    with pytest.raises(aio.AioRpcError) as err:
        await catalog.IngestTrackAudio(
            _upload(ids.encode(uuid.uuid4()), _wav(tmp_path, seconds=1)), metadata=people.admin.metadata
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
