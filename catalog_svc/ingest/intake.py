"""What catalog_svc needs of ingest before any audio work starts, without a codec or numpy loaded:
the four containers accepted (by their magic bytes), the refusal an upload gets, and the removal
of work directories a killed ingest left. The pipeline itself (PyAV, libsndfile, numpy: about 30 MB
of a process) is imported by the first ingest only.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from meshkit.errors import InvalidArgument

# Each ingest works in a temporary directory of the storage root named with this prefix.
WORK_DIR_PREFIX = ".ingest-"


class UnsupportedAudio(InvalidArgument):
    """The upload is not acceptable audio. ``reason`` is a stable code, the message is for people.

    Reasons: ``empty``, ``not_audio``, ``unsupported_format``, ``no_audio_stream``, ``zero_length``,
    ``too_short``, ``too_long``, ``truncated``, ``corrupt``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"unsupported audio ({reason}): {message}")
        self.reason = reason


def sniff_format(head: bytes) -> str | None:
    """The container by its magic bytes (``wav``, ``flac``, ``mp3``, ``ogg``), or None.

    Deciding this ourselves, rather than letting FFmpeg probe, keeps "what we accept" to the four
    formats the catalog promises and keeps FFmpeg's other demuxers (playlists, images, video)
    away from uploads.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    body = after_id3(head)
    if body[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or _mp3_frame_sync(body):
        return "mp3"
    return None


def after_id3(head: bytes) -> bytes:
    """``head`` past a leading ID3v2 tag (MP3s, and some FLACs, start with one)."""
    if head[:3] != b"ID3" or len(head) < 10:
        return head
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]  # syncsafe integer
    return head[10 + size + (10 if head[5] & 0x10 else 0) :]


def _mp3_frame_sync(data: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version, layer III, a bitrate index
    that is neither free nor bad, and a valid sample-rate index."""
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0:
        return False
    version, layer = (data[1] >> 3) & 0x03, (data[1] >> 1) & 0x03
    bitrate, rate = data[2] >> 4, (data[2] >> 2) & 0x03
    return version != 1 and layer == 1 and bitrate not in (0, 15) and rate != 3


def remove_stale_work_dirs(storage_root: Path, older_than_s: float = 3600.0) -> list[Path]:
    """Delete temporary directories left by ingests that were killed mid-way (a crash skips the
    ``finally``); run it at service start. Returns what was removed."""
    removed = []
    cutoff = time.time() - older_than_s
    for path in Path(storage_root).glob(f"{WORK_DIR_PREFIX}*"):
        if path.is_dir() and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
