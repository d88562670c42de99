"""``ingest``: one upload in, every rendition, seek index and feature of a track out, or nothing.

The pipeline is synchronous and CPU bound (the caller runs it in a worker thread or process) and
has no side effects besides files under ``storage_root``. It is all-or-nothing: every file is
written into a private temporary directory *inside* ``storage_root`` (same filesystem, so the
final moves are atomic renames), and only when every stage has succeeded are the files renamed
into ``tracks/``. Files a re-ingest replaces are set aside first and put back if any rename fails,
so a failed ingest leaves ``storage_root`` as it found it.

Layout: ``tracks/<id>_<kbps>kbps.ogg`` for 96/160/320, ``tracks/<id>_preview.ogg``,
and ``<file stem>.seek.json`` next to each, where ``<id>`` is the track's 22-character base62 id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from catalog_svc.ingest import encode, features, intake, seekindex
from catalog_svc.ingest.decode import DEFAULT_MAX_DURATION_S, Source, decode
from meshkit import ids

TRACKS_DIR = "tracks"


@dataclass(frozen=True)
class IngestedFile:
    """One stored rendition; the fields of a ``catalog.audio_files`` row."""

    quality: str  # low | normal | high | preview
    bitrate_kbps: int  # nominal, read back from the file's Vorbis header
    size_bytes: int
    duration_ms: int
    storage_path: str  # relative to storage_root, "/"-separated
    seek_index_path: str  # relative to storage_root
    sample_rate: int
    channels: int
    codec: str = "vorbis"
    container: str = "ogg"


@dataclass(frozen=True)
class IngestResult:
    track_id: uuid.UUID
    files: list[IngestedFile]
    features: dict[str, float | int]  # Spotify's audio-features names
    source_format: str
    source_codec: str
    source_sample_rate: int
    source_channels: int
    duration_ms: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def file(self, quality: str) -> IngestedFile:
        return next(f for f in self.files if f.quality == quality)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["track_id"] = str(self.track_id)
        return data


def file_stem(track_id: uuid.UUID, quality: str) -> str:
    """``<id>_<kbps>kbps`` for the three qualities, ``<id>_preview`` for the preview."""
    base = ids.encode(track_id)
    if quality == "preview":
        return f"{base}_preview"
    return f"{base}_{encode.QUALITY_KBPS[quality]}kbps"


def ingest(
    source: Source,
    track_id: uuid.UUID,
    storage_root: Path,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> IngestResult:
    """Decode ``source``, write the renditions, preview and seek indexes for ``track_id`` under
    ``storage_root/tracks/``, and compute its audio features.

    Raises ``UnsupportedAudio`` (an ``InvalidArgument``) for a bad upload; any other exception is a
    server fault. Either way nothing is left under ``storage_root``.
    """
    storage_root = Path(storage_root)
    timings: dict[str, float] = {}
    clock = time.perf_counter

    started = clock()
    audio = decode(source, max_duration_s=max_duration_s)  # a bad upload never touches storage
    timings["decode"] = clock() - started

    storage_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=intake.WORK_DIR_PREFIX, dir=storage_root))
    try:
        started = clock()
        encoded: list[tuple[str, encode.EncodedFile]] = []
        for quality, kbps in encode.QUALITY_KBPS.items():
            path = work / f"{file_stem(track_id, quality)}.ogg"
            encoded.append((quality, encode.encode_vorbis(audio.samples, audio.sample_rate, path, kbps)))
        clip = encode.preview_clip(audio.samples, audio.sample_rate)
        path = work / f"{file_stem(track_id, 'preview')}.ogg"
        encoded.append(("preview", encode.encode_vorbis(clip, audio.sample_rate, path, encode.PREVIEW_KBPS)))
        del clip
        timings["encode"] = clock() - started

        started = clock()
        files: list[IngestedFile] = []
        for quality, enc in encoded:
            index = seekindex.build(enc.path, enc.sample_rate)
            index_path = seekindex.index_path_for(enc.path)
            seekindex.save(index, index_path)
            files.append(
                IngestedFile(
                    quality=quality,
                    bitrate_kbps=enc.nominal_kbps,
                    size_bytes=enc.path.stat().st_size,
                    duration_ms=index.duration_ms,
                    storage_path=f"{TRACKS_DIR}/{enc.path.name}",
                    seek_index_path=f"{TRACKS_DIR}/{index_path.name}",
                    sample_rate=enc.sample_rate,
                    channels=enc.channels,
                )
            )
        timings["seek"] = clock() - started

        started = clock()
        feats = features.extract(audio.samples, audio.sample_rate)
        timings["features"] = clock() - started

        started = clock()
        _publish(work, storage_root / TRACKS_DIR)
        timings["publish"] = clock() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    return IngestResult(
        track_id=track_id,
        files=files,
        features=feats,
        source_format=audio.source_format,
        source_codec=audio.source_codec,
        source_sample_rate=audio.source_sample_rate,
        source_channels=audio.source_channels,
        duration_ms=audio.duration_ms,
        timings=timings,
    )


def _publish(work: Path, tracks: Path) -> None:
    """Rename every file of ``work`` into ``tracks``, all or none.

    Renames within one filesystem are atomic per file; a replaced file (re-ingest) is first moved
    aside into ``work/.replaced`` so a failure half-way can restore the previous set exactly.
    """
    created_tracks = not tracks.exists()
    tracks.mkdir(parents=True, exist_ok=True)
    aside = work / ".replaced"
    aside.mkdir()
    done: list[tuple[Path, Path | None]] = []  # (published path, the file it replaced)
    try:
        for item in sorted(p for p in work.iterdir() if p.is_file()):
            target = tracks / item.name
            previous = aside / item.name if target.exists() else None
            if previous is not None:
                os.replace(target, previous)
            done.append((target, previous))
            os.replace(item, target)
    except BaseException:
        for target, previous in reversed(done):
            if previous is not None:
                os.replace(previous, target)
            else:
                target.unlink(missing_ok=True)
        if created_tracks:
            _rmdir_if_empty(tracks)
        raise


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: someone else's files are in there
        path.rmdir()
