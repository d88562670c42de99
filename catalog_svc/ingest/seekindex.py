"""A time→byte seek index per Ogg file, so a client can start (or switch quality) mid-track.

Every file's index uses the same time grid (one point per ``interval_ms``, from 0), and each point
names the page that *contains* that instant: the last page whose granule position (samples
completed by the end of the page) is ≤ the instant, while the next timed page's granule is
greater. A decoder started at that page's first byte (after the file's header pages, whose byte
length is ``header_bytes``) re-primes on the page's packets and reaches the instant before its
audio is due, so switching from 96 to 320 kbps at a grid time means: fetch the new file's
headers, then bytes from ``lookup(index, t)`` on, and discard output before ``t``.

The index is JSON next to the file: ``tracks/<id>_<kbps>kbps.seek.json``.
"""

from __future__ import annotations

import bisect
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INDEX_VERSION = 1
DEFAULT_INTERVAL_MS = 1000
_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seqno, crc, nsegs
_NO_GRANULE = -1  # a page on which no packet ends carries granule -1


class SeekIndexError(ValueError):
    """The file is not an Ogg stream we can index (a server fault: we wrote it)."""


@dataclass(frozen=True)
class OggPage:
    offset: int  # byte offset of "OggS"
    size: int  # header + segment table + body
    granule: int
    serial: int
    sequence: int
    flags: int


@dataclass
class SeekIndex:
    sample_rate: int
    duration_ms: int
    total_samples: int
    file_size: int
    header_bytes: int  # bytes before the first audio page (identification, comment, setup headers)
    interval_ms: int
    points: list[tuple[int, int]] = field(default_factory=list)  # (time_ms, byte_offset), ascending
    version: int = INDEX_VERSION
    format: str = "ogg/vorbis"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["points"] = [list(p) for p in self.points]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeekIndex:
        fields = dict(data)
        fields["points"] = [(int(t), int(o)) for t, o in data["points"]]
        return cls(**fields)


def iter_pages(path: str | os.PathLike[str]) -> Iterator[OggPage]:
    """Walk an Ogg file page by page, reading only each page's header (bodies are skipped)."""
    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(_PAGE_HEADER.size)
            if not header:
                return
            if len(header) < _PAGE_HEADER.size:
                raise SeekIndexError(f"{os.fspath(path)}: truncated page header at byte {offset}")
            capture, version, flags, granule, serial, seqno, _crc, nsegs = _PAGE_HEADER.unpack(header)
            if capture != b"OggS" or version != 0:
                raise SeekIndexError(f"{os.fspath(path)}: no Ogg page at byte {offset}")
            lacing = f.read(nsegs)
            if len(lacing) < nsegs:
                raise SeekIndexError(f"{os.fspath(path)}: truncated segment table at byte {offset}")
            size = _PAGE_HEADER.size + nsegs + sum(lacing)
            yield OggPage(offset, size, granule, serial, seqno, flags)
            offset += size
            f.seek(offset)


def _sample_at(time_ms: int, sample_rate: int) -> int:
    return time_ms * sample_rate // 1000


def build(
    path: str | os.PathLike[str], sample_rate: int, interval_ms: int = DEFAULT_INTERVAL_MS
) -> SeekIndex:
    """Index ``path`` on a grid of ``interval_ms``. ``sample_rate`` is the granule unit (Vorbis
    granules count PCM frames at the stream's rate)."""
    pages = list(iter_pages(path))
    if not pages:
        raise SeekIndexError(f"{os.fspath(path)}: empty file")
    serial = pages[0].serial  # one logical stream; ignore any other multiplexed in
    stream = [p for p in pages if p.serial == serial]
    # Header pages carry granule 0 and precede the first page on which audio packets end.
    timed = [p for p in stream if p.granule != _NO_GRANULE]
    first_audio = next((p for p in stream if p.granule > 0), None)
    if first_audio is None:
        raise SeekIndexError(f"{os.fspath(path)}: no audio pages")
    header_bytes = first_audio.offset
    total = max(p.granule for p in timed)
    duration_ms = total * 1000 // sample_rate

    points: list[tuple[int, int]] = []
    j = 0  # timed[j] is the last page with granule ≤ the grid instant
    for time_ms in range(0, duration_ms, interval_ms):
        target = _sample_at(time_ms, sample_rate)
        while j + 1 < len(timed) and timed[j + 1].granule <= target:
            j += 1
        points.append((time_ms, timed[j].offset))
    return SeekIndex(
        sample_rate=sample_rate,
        duration_ms=duration_ms,
        total_samples=total,
        file_size=pages[-1].offset + pages[-1].size,
        header_bytes=header_bytes,
        interval_ms=interval_ms,
        points=points,
    )


def index_path_for(ogg_path: Path) -> Path:
    """``tracks/<id>_96kbps.ogg`` → ``tracks/<id>_96kbps.seek.json``."""
    return ogg_path.with_name(ogg_path.stem + ".seek.json")


def save(index: SeekIndex, path: Path) -> None:
    path.write_text(json.dumps(index.to_json(), separators=(",", ":")))


def load(path: Path) -> SeekIndex:
    return SeekIndex.from_json(json.loads(path.read_text()))


def lookup(index: SeekIndex, time_ms: int) -> int:
    """Byte offset of the page to start decoding at for ``time_ms``: the indexed page at the last
    grid point at or before it (clamped to the track). Its granule is ≤ ``time_ms``, so decoding
    from there and discarding up to ``time_ms`` is exact; at grid times the page is the one that
    contains the instant, in every quality of the same track."""
    if not index.points:
        raise SeekIndexError("empty seek index")
    i = bisect.bisect_right(index.points, max(0, time_ms), key=lambda point: point[0]) - 1
    return index.points[max(i, 0)][1]
