"""The rows an ingest result becomes: audio_files per rendition and the track's features.

Shared by the IngestTrackAudio job and the demo-data loader so both store ingests the same way;
the statements run in whatever (sync or async) transaction the caller holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Executable, delete, insert, update

from catalog_svc.ingest.pipeline import IngestResult
from catalog_svc.models import AudioFile, Track


def statements(result: IngestResult, public_base_url: str = "") -> Sequence[tuple[Executable, object]]:
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


def _audio_file_rows(result: IngestResult) -> list[dict[str, object]]:
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
