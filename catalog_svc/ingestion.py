"""IngestTrackAudio as a job: spool the upload, check it, run the pipeline off the event loop.

The RPC answers as soon as the upload is safely on disk and looks like audio (a QUEUED job);
decoding, encoding and analysis run in a worker thread (libsndfile and FFmpeg release the GIL),
and the job's row says how it ended. A failed job stores no rows; the pipeline itself leaves no
files behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from catalog_svc.audio_store import AudioFileRow, AudioStore, IngestJobRow, Withdrawn
from catalog_svc.ingest import intake, seekindex
from catalog_svc.permissions import Permissions
from catalog_svc.store import CatalogStore
from meshkit import ids
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

log = logging.getLogger(__name__)

UPLOAD_DIR = ".uploads"


@dataclass(frozen=True)
class Upload:
    """What an upload says about itself before its bytes arrive."""

    track: str  # the track's id or URI, as the client sent it
    filename: str
    size: int  # as declared; the bytes are counted as they arrive


@dataclass(frozen=True)
class TrackAudio:
    """One stored rendition of a track and, when asked for, its seek points (time_ms, byte_offset)."""

    file: AudioFileRow
    seek_points: list[tuple[int, int]]


@dataclass(eq=False)
class Ingestion:
    store: AudioStore
    catalog: CatalogStore
    permissions: Permissions
    storage_root: Path
    public_base_url: str
    max_upload_bytes: int
    _running: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    # One ingest per track at a time: the last one to finish would otherwise win.
    _track_locks: dict[uuid.UUID, asyncio.Lock] = field(init=False, default_factory=dict)

    def remove_stale_work(self) -> None:
        """Delete what ingests killed mid-way left in storage (run once at start)."""
        intake.remove_stale_work_dirs(self.storage_root)

    async def submit(self, upload: Upload, chunks: AsyncIterator[bytes]) -> IngestJobRow:
        """Check the caller and the upload, spool it, create the job and start it."""
        track_id = ids.parse_id_or_uri(upload.track, "track")
        editor = await self.permissions.editor()
        found = await self.catalog.tracks_by_id([track_id])
        if track_id not in found:
            raise NotFound(f"track {upload.track} not found")
        editor.require_manages([a.id for a in found[track_id].album_artists], "track")
        if upload.size > self.max_upload_bytes:
            raise ResourceExhausted(
                f"upload of {upload.size} bytes exceeds the limit of {self.max_upload_bytes}"
            )
        job_id = uuid.uuid4()
        spool = self.storage_root / UPLOAD_DIR / job_id.hex
        try:
            size = await self._spool(chunks, spool)
            if size == 0:
                raise InvalidArgument("the upload is empty")
            with spool.open("rb") as head:
                if intake.sniff_format(head.read(64)) is None:
                    raise InvalidArgument("the upload is not audio (expected WAV, FLAC, MP3 or Ogg)")
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        job = await self.store.create_job(
            job_id, track_id, upload.filename[:255] or None, size, str(spool), editor.user_id
        )
        task = asyncio.create_task(self._run(job_id, track_id, spool))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return job

    async def _spool(self, chunks: AsyncIterator[bytes], spool: Path) -> int:
        spool.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with spool.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_upload_bytes:
                    raise ResourceExhausted(f"upload exceeds the limit of {self.max_upload_bytes} bytes")
                out.write(chunk)
        return size

    async def _run(self, job_id: uuid.UUID, track_id: uuid.UUID, spool: Path) -> None:
        lock = self._track_locks.setdefault(track_id, asyncio.Lock())
        async with lock:
            await self.store.mark(job_id, status="running", started_at=_now())
            try:
                # The pipeline (codecs, numpy) loads with the first upload, not with the service.
                from catalog_svc.ingest import pipeline

                result = await asyncio.to_thread(pipeline.ingest, spool, track_id, self.storage_root)
                await self.store.store_result(job_id, result, self.public_base_url, _now())
            except intake.UnsupportedAudio as err:
                await self.store.mark(job_id, status="failed", finished_at=_now(), error=err.message)
            except Exception:
                log.exception("ingest job %s failed", job_id)
                await self.store.mark(job_id, status="failed", finished_at=_now(), error="internal error")
            finally:
                await asyncio.to_thread(spool.unlink, missing_ok=True)

    async def job(self, job_id_text: str) -> IngestJobRow:
        """The job, for an admin or the user who submitted it; others get NOT_FOUND."""
        job_id = ids.decode(job_id_text, what="ingest job id")
        editor = await self.permissions.editor()
        job = await self.store.job(job_id)
        if job is None or not (editor.is_admin or job.requested_by == editor.user_id):
            raise NotFound(f"ingest job {job_id_text} not found")
        return job

    async def audio_files(self, track_id_text: str, *, seek_points: bool = False) -> list[TrackAudio]:
        """The track's renditions, lowest bitrate first, with their seek points if asked for."""
        track_id = ids.parse_id_or_uri(track_id_text, "track")
        rows = await self.store.audio_files(track_id)
        if rows is None:
            raise NotFound(f"track {track_id_text} not found")
        if isinstance(rows, Withdrawn):
            raise FailedPrecondition(f"track {track_id_text} is not available: it was taken down")
        return [TrackAudio(row, self._seek_points(row) if seek_points else []) for row in rows]

    def _seek_points(self, row: AudioFileRow) -> list[tuple[int, int]]:
        if not row.seek_index_path:
            return []
        return list(seekindex.load(self.storage_root / row.seek_index_path).points)

    async def drain(self) -> None:
        """Let running jobs finish (on shutdown) so none is left RUNNING forever."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
