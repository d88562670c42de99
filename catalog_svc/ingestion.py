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
from pathlib import Path

from spotify.catalog.v1 import catalog_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc import audio_records
from catalog_svc.ingest import decode, pipeline, seekindex
from catalog_svc.models import AudioFile, IngestJob, Track
from catalog_svc.permissions import Permissions
from catalog_svc.store import CatalogStore
from meshkit import ids
from meshkit.errors import InvalidArgument, NotFound, ResourceExhausted

log = logging.getLogger(__name__)

UPLOAD_DIR = ".uploads"
QUALITY_ENUM = {
    "low": catalog_pb2.AUDIO_QUALITY_LOW,
    "normal": catalog_pb2.AUDIO_QUALITY_NORMAL,
    "high": catalog_pb2.AUDIO_QUALITY_HIGH,
    "preview": catalog_pb2.AUDIO_QUALITY_PREVIEW,
}
STATUS_ENUM = {
    "queued": catalog_pb2.IngestJob.STATUS_QUEUED,
    "running": catalog_pb2.IngestJob.STATUS_RUNNING,
    "succeeded": catalog_pb2.IngestJob.STATUS_SUCCEEDED,
    "failed": catalog_pb2.IngestJob.STATUS_FAILED,
}


class Ingestion:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: CatalogStore,
        permissions: Permissions,
        storage_root: Path,
        public_base_url: str,
        max_upload_bytes: int,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.permissions = permissions
        self.storage_root = storage_root
        self.public_base_url = public_base_url
        self.max_upload_bytes = max_upload_bytes
        self._running: set[asyncio.Task[None]] = set()
        # One ingest per track at a time: the last one to finish would otherwise win.
        self._track_locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def submit(
        self,
        first: catalog_pb2.IngestTrackAudioRequest,
        rest: AsyncIterator[catalog_pb2.IngestTrackAudioRequest],
    ) -> IngestJob:
        """Check the caller and the upload, spool it, create the job and start it."""
        if first.WhichOneof("payload") != "metadata":
            raise InvalidArgument("the first message of an upload must carry its metadata")
        meta = first.metadata
        track_id = ids.parse_id_or_uri(meta.track_id, "track")
        editor = await self.permissions.editor()
        found = await self.store.tracks_by_id([track_id])
        if track_id not in found:
            raise NotFound(f"track {meta.track_id} not found")
        editor.require_manages([a.id for a in found[track_id].album_artists], "track")
        if meta.size > self.max_upload_bytes:
            raise ResourceExhausted(
                f"upload of {meta.size} bytes exceeds the limit of {self.max_upload_bytes}"
            )
        job_id = uuid.uuid4()
        spool = self.storage_root / UPLOAD_DIR / job_id.hex
        try:
            size = await self._spool(rest, spool)
            if size == 0:
                raise InvalidArgument("the upload is empty")
            with spool.open("rb") as head:
                if decode.sniff_format(head.read(64)) is None:
                    raise InvalidArgument("the upload is not audio (expected WAV, FLAC, MP3 or Ogg)")
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        job = IngestJob(
            id=job_id,
            track_id=track_id,
            status="queued",
            source_filename=meta.filename[:255] or None,
            source_size=size,
            source_path=str(spool),
            requested_by=editor.user_id,
        )
        async with self.sessions() as session, session.begin():
            session.add(job)
        task = asyncio.create_task(self._run(job_id, track_id, spool))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return job

    async def _spool(self, chunks: AsyncIterator[catalog_pb2.IngestTrackAudioRequest], spool: Path) -> int:
        spool.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with spool.open("wb") as out:
            async for message in chunks:
                if message.WhichOneof("payload") != "chunk":
                    raise InvalidArgument("only the first message of an upload may carry metadata")
                size += len(message.chunk)
                if size > self.max_upload_bytes:
                    raise ResourceExhausted(f"upload exceeds the limit of {self.max_upload_bytes} bytes")
                out.write(message.chunk)
        return size

    async def _run(self, job_id: uuid.UUID, track_id: uuid.UUID, spool: Path) -> None:
        lock = self._track_locks.setdefault(track_id, asyncio.Lock())
        async with lock:
            await self._mark(job_id, status="running", started_at=_now())
            try:
                result = await asyncio.to_thread(pipeline.ingest, spool, track_id, self.storage_root)
                async with self.sessions() as session, session.begin():
                    for statement, params in audio_records.statements(result, self.public_base_url):
                        await session.execute(statement, params)
                    await session.execute(
                        IngestJob.__table__.update()
                        .where(IngestJob.id == job_id)
                        .values(status="succeeded", finished_at=_now(), error=None)
                    )
            except decode.UnsupportedAudio as err:
                await self._mark(job_id, status="failed", finished_at=_now(), error=err.message)
            except Exception:
                log.exception("ingest job %s failed", job_id)
                await self._mark(job_id, status="failed", finished_at=_now(), error="internal error")
            finally:
                await asyncio.to_thread(spool.unlink, missing_ok=True)

    async def _mark(self, job_id: uuid.UUID, **values: object) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(IngestJob.__table__.update().where(IngestJob.id == job_id).values(**values))

    async def job(self, job_id_text: str) -> IngestJob:
        """The job, for an admin or the user who submitted it; others get NOT_FOUND."""
        job_id = ids.decode(job_id_text, what="ingest job id")
        editor = await self.permissions.editor()
        async with self.sessions() as session:
            job = await session.get(IngestJob, job_id)
        if job is None or not (editor.is_admin or job.requested_by == editor.user_id):
            raise NotFound(f"ingest job {job_id_text} not found")
        return job

    async def audio_files(self, track_id_text: str) -> list[AudioFile]:
        track_id = ids.parse_id_or_uri(track_id_text, "track")
        async with self.sessions() as session:
            if await session.get(Track, track_id) is None:
                raise NotFound(f"track {track_id_text} not found")
            rows = await session.scalars(
                select(AudioFile).where(AudioFile.track_id == track_id).order_by(AudioFile.bitrate_kbps)
            )
            return list(rows)

    async def drain(self) -> None:
        """Let running jobs finish (on shutdown) so none is left RUNNING forever."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def job_message(job: IngestJob) -> catalog_pb2.IngestJob:
    message = catalog_pb2.IngestJob(
        id=ids.encode(job.id),
        track_id=ids.encode(job.track_id) if job.track_id else "",
        status=STATUS_ENUM.get(job.status, catalog_pb2.IngestJob.STATUS_UNSPECIFIED),
        error=job.error or "",
        filename=job.source_filename or "",
        size_bytes=job.source_size or 0,
        created_by=ids.encode(job.requested_by) if job.requested_by else "",
    )
    for name in ("created_at", "started_at", "finished_at"):
        value = getattr(job, name)
        if value is not None:
            getattr(message, name).FromDatetime(value)
    return message


def audio_file_message(row: AudioFile, storage_root: Path | None = None) -> catalog_pb2.AudioFile:
    """The AudioFile message; with `storage_root`, its seek points inline (read from the index file)."""
    message = catalog_pb2.AudioFile(
        id=ids.encode(row.id),
        track_id=ids.encode(row.track_id),
        quality=QUALITY_ENUM.get(row.quality, catalog_pb2.AUDIO_QUALITY_UNSPECIFIED),
        codec=row.codec,
        bitrate_kbps=row.bitrate_kbps,
        size_bytes=row.size_bytes,
        storage_path=row.storage_path,
        duration_ms=row.duration_ms,
        seek_index_path=row.seek_index_path or "",
        sample_rate_hz=row.sample_rate_hz or 0,
        channels=row.channels or 0,
    )
    message.created_at.FromDatetime(row.created_at)
    if storage_root is not None and row.seek_index_path:
        index = seekindex.load(storage_root / row.seek_index_path)
        message.seek_points.extend(
            catalog_pb2.SeekPoint(time_ms=time_ms, byte_offset=offset) for time_ms, offset in index.points
        )
    return message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
