"""SQL for audio: ingest jobs, and the rows an ingest result becomes (audio_files per rendition and
the track's features).

`statements` is shared by the IngestTrackAudio job and the demo-data loader so both store ingests
the same way; its statements run in whatever (sync or async) transaction the caller holds.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, delete, insert, select, update

from catalog_svc.models import Album, AudioFile, IngestJob, Track
from catalog_svc.store import row_columns, select_row, taken_down
from meshkit.db import SqlStore

if TYPE_CHECKING:  # the pipeline brings the codecs and numpy: only an ingest loads it
    from catalog_svc.ingest.pipeline import IngestResult


class Withdrawn(enum.Enum):
    """A track a takedown covers: its files are not handed out."""

    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class IngestJobRow:
    id: uuid.UUID
    track_id: uuid.UUID | None
    status: str
    error: str | None
    source_filename: str | None
    source_size: int | None
    requested_by: uuid.UUID | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AudioFileRow:
    id: uuid.UUID
    track_id: uuid.UUID
    quality: str
    codec: str
    bitrate_kbps: int
    size_bytes: int
    storage_path: str
    duration_ms: int
    seek_index_path: str | None
    sample_rate_hz: int | None
    channels: int | None
    created_at: dt.datetime


class AudioStore(SqlStore):
    async def create_job(
        self,
        job_id: uuid.UUID,
        track_id: uuid.UUID,
        filename: str | None,
        size: int,
        source_path: str,
        requested_by: uuid.UUID,
    ) -> IngestJobRow:
        """A QUEUED job for the spooled upload at `source_path`."""
        async with self.sessions() as session, session.begin():
            row = (
                await session.execute(
                    insert(IngestJob)
                    .values(
                        id=job_id,
                        track_id=track_id,
                        status="queued",
                        source_filename=filename,
                        source_size=size,
                        source_path=source_path,
                        requested_by=requested_by,
                    )
                    .returning(*row_columns(IngestJobRow, IngestJob.__table__))
                )
            ).one()
        return IngestJobRow(**row._mapping)

    async def mark(self, job_id: uuid.UUID, **values: object) -> None:
        """Set a job's status and times."""
        async with self.sessions() as session, session.begin():
            await session.execute(update(IngestJob).where(IngestJob.id == job_id).values(**values))

    async def store_result(
        self, job_id: uuid.UUID, result: IngestResult, public_base_url: str, finished_at: dt.datetime
    ) -> None:
        """The result's rows and the job's success, in one transaction."""
        async with self.sessions() as session, session.begin():
            for statement, params in statements(result, public_base_url):
                await session.execute(statement, params)
            await session.execute(
                update(IngestJob)
                .where(IngestJob.id == job_id)
                .values(status="succeeded", finished_at=finished_at, error=None)
            )

    async def job(self, job_id: uuid.UUID) -> IngestJobRow | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select_row(IngestJobRow, IngestJob.__table__).where(IngestJob.id == job_id)
                )
            ).one_or_none()
        return IngestJobRow(*row) if row is not None else None

    async def audio_files(self, track_id: uuid.UUID) -> list[AudioFileRow] | Withdrawn | None:
        """The track's renditions, lowest bitrate first; None when there is no such track, WITHDRAWN
        when a takedown covers it."""
        async with self.sessions() as session:
            withdrawn = await session.scalar(
                select(taken_down(Track.id, Album.id, Album.artist_id))
                .select_from(Track)
                .join(Album, Album.id == Track.album_id)
                .where(Track.id == track_id)
            )
            if withdrawn is None:
                return None
            if withdrawn:
                return Withdrawn.WITHDRAWN
            rows = await session.execute(
                select_row(AudioFileRow, AudioFile.__table__)
                .where(AudioFile.track_id == track_id)
                .order_by(AudioFile.bitrate_kbps)
            )
            return [AudioFileRow(*row) for row in rows]


def statements(
    result: IngestResult, public_base_url: str = ""
) -> Sequence[tuple[Executable, list[dict[str, Any]] | None]]:
    """(statement, parameters) pairs that replace the track's audio files and store its features.

    Run them in order inside one transaction: `session.execute(statement, parameters)`.
    """
    preview = next((f for f in result.files if f.quality == "preview"), None)
    values: dict[str, object] = {"audio_features": dict(result.features), "duration_ms": result.duration_ms}
    if preview is not None and public_base_url:
        values["preview_url"] = f"{public_base_url.rstrip('/')}/media/{preview.storage_path}"
    return [
        (delete(AudioFile).where(AudioFile.track_id == result.track_id), None),
        (insert(AudioFile), _audio_file_rows(result)),
        (update(Track).where(Track.id == result.track_id).values(**values), None),
    ]


def _audio_file_rows(result: IngestResult) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "track_id": result.track_id,
            "quality": f.quality,
            "codec": f.codec,
            "container": f.container,
            "bitrate_kbps": f.bitrate_kbps,
            "sample_rate_hz": f.sample_rate,
            "channels": f.channels,
            "size_bytes": f.size_bytes,
            "duration_ms": f.duration_ms,
            "storage_path": f.storage_path,
            "seek_index_path": f.seek_index_path,
        }
        for f in result.files
    ]
