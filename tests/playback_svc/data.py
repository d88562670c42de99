"""Test data in playback's real neighbours: tracks in the mesh's catalog_svc, accounts in its auth_svc.

Each service writes its own rows: tracks with an exact duration go in through catalog_svc's seed
entry point (a track's duration otherwise comes only from ingesting that much audio), extra
credits through catalog's UpdateTrack, audio through IngestTrackAudio and the ingest job, and
accounts (with the artists they manage) through auth_svc's seed entry point. Playlists are
created through library_svc's own RPCs by the tests that need them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from auth_svc.seed import SeedAccount, load_accounts
from catalog_svc import seed as catalog_seed
from devdata import demo, synth
from meshkit import ids

# The demo admin: catalog's writes need an admin (or the owning artist) as the caller.
ADMIN = (("x-user-id", ids.encode(demo.demo_uuid("user:admin@example.com"))), ("x-user-roles", "user,admin"))
UPLOAD_CHUNK = 256 * 1024
_Job = catalog_pb2.IngestJob


@dataclass(frozen=True)
class Album:
    """An album of the test catalog: its id, its tracks in play order, its main artist."""

    id: str
    tracks: list[str]
    artist: str


@dataclass(frozen=True)
class Account:
    """An auth_svc account, and the metadata Envoy would attach to its calls after auth."""

    id: str
    roles: tuple[str, ...]
    product: str = "premium"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("x-user-id", self.id),
            ("x-user-roles", ",".join(self.roles)),
            ("x-user-product", self.product),
        )


class CatalogWriter:
    """Writes tracks into the mesh's catalog_svc for playback's tests."""

    def __init__(self, database_url: str, catalog: catalog_pb2_grpc.CatalogServiceStub) -> None:
        self.database_url = database_url
        self.catalog = catalog

    async def album(
        self, durations: Sequence[int], *, name: str = "Test Track", names: Sequence[str] = ()
    ) -> Album:
        """One artist (no genres: the catalog's genre list stays the demo's) and an album of tracks
        with these exact durations (ms), numbered in order; `names` names them one by one."""
        artist, album = uuid.uuid4(), uuid.uuid4()
        tracks = [uuid.uuid4() for _ in durations]
        label = ids.encode(artist)[:6]
        seeded_artist = catalog_seed.SeedArtist(
            id=artist,
            name=f"Playback Test Artist {label}",
            genres=(),
            verified=False,
            follower_count=0,
            popularity=0,
            bio="",
        )
        seeded_album = catalog_seed.SeedAlbum(
            id=album,
            artist_id=artist,
            title=f"Playback Test Album {label}",
            release_date=date(2024, 5, 1),
            album_type="album",
            total_tracks=len(tracks),
            label="Test Records",
        )
        seeded_tracks = [
            catalog_seed.SeedTrack(
                id=track,
                album_id=album,
                artist_id=artist,
                duration_ms=duration,
                track_number=n + 1,
                title=names[n] if names else name,
                explicit=False,
                popularity=10,
            )
            for n, (track, duration) in enumerate(zip(tracks, durations, strict=True))
        ]
        wrote = await asyncio.to_thread(
            catalog_seed.load_catalog,
            self.database_url,
            [seeded_artist],
            [seeded_album],
            seeded_tracks,
            only_if_empty=False,
        )
        assert wrote, "catalog_svc.seed wrote nothing"
        return Album(ids.encode(album), [ids.encode(t) for t in tracks], ids.encode(artist))

    async def track(self, duration_ms: int = 180_000, *, name: str = "Test Track") -> str:
        return (await self.album([duration_ms], name=name)).tracks[0]

    async def credited(self, track_id: str, artists: int) -> list[str]:
        """Credit `artists` artists on the track, its own first (catalog's UpdateTrack, as an admin)."""
        track = await self.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id), metadata=ADMIN)
        extra = [await self.album([1_000]) for _ in range(artists - 1)]
        credits = [track.artists[0].id, *(album.artist for album in extra)]
        updated = await self.catalog.UpdateTrack(
            catalog_pb2.UpdateTrackRequest(id=track_id, artist_ids=credits), metadata=ADMIN
        )
        assert [a.id for a in updated.artists] == credits
        return credits

    async def ingest(self, track_id: str, *, seconds: float, seed: int = 0, within_s: float = 90) -> None:
        """Give the track real audio: a synthesized WAV through IngestTrackAudio, until the job succeeds."""
        with tempfile.TemporaryDirectory(prefix="playback-test-audio-") as tmp:
            wav = synth.synthesize("rock", seed=seed, seconds=seconds).write_wav(Path(tmp) / "source.wav")
            data = wav.read_bytes()

        async def upload() -> AsyncIterator[catalog_pb2.IngestTrackAudioRequest]:
            yield catalog_pb2.IngestTrackAudioRequest(
                metadata=catalog_pb2.IngestMetadata(
                    track_id=track_id, filename="source.wav", content_type="audio/wav", size=len(data)
                )
            )
            for start in range(0, len(data), UPLOAD_CHUNK):
                yield catalog_pb2.IngestTrackAudioRequest(chunk=data[start : start + UPLOAD_CHUNK])

        job = await self.catalog.IngestTrackAudio(upload(), metadata=ADMIN)
        deadline = time.monotonic() + within_s
        while job.status not in (_Job.STATUS_SUCCEEDED, _Job.STATUS_FAILED):
            assert time.monotonic() < deadline, f"ingest job {job.id} did not finish in {within_s}s"
            await asyncio.sleep(0.2)
            job = await self.catalog.GetIngestJob(catalog_pb2.GetIngestJobRequest(id=job.id), metadata=ADMIN)
        assert (job.status, job.error) == (_Job.STATUS_SUCCEEDED, ""), job

    async def audio_files(self, track_id: str) -> list[catalog_pb2.AudioFile]:
        reply = await self.catalog.ListTrackAudioFiles(
            catalog_pb2.ListTrackAudioFilesRequest(track_id=track_id), metadata=ADMIN
        )
        return list(reply.audio_files)


async def seed_accounts(
    database_url: str, count: int, *, roles: tuple[str, ...] = ("user",), manages: Sequence[str] = ()
) -> list[Account]:
    """Fresh accounts in auth_svc (through its seed entry point), managing `manages` (artist ids)."""
    made = [
        SeedAccount(
            id=uuid.uuid4(),
            email=f"playback-{uuid.uuid4().hex[:12]}@example.test",
            password=uuid.uuid4().hex,
            display_name="Playback Tester",
            roles=roles,
            managed_artists=tuple(ids.decode(a) for a in manages),
        )
        for _ in range(count)
    ]
    # load_accounts runs its own event loop (the password hasher's): off this one's thread.
    created = await asyncio.to_thread(load_accounts, database_url, made, bcrypt_rounds=4)
    assert created == count
    return [Account(ids.encode(a.id), roles) for a in made]
