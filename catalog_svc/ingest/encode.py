"""Ogg Vorbis renditions (96/160/320 kbps nominal) and the 30-second preview, via libsndfile.

libsndfile exposes Vorbis quality only as ``compression_level`` (0 = best, 1 = smallest), not as a
bitrate. The level that gives each nominal bitrate is therefore *measured*, not assumed: the
bitrate is read back from the Vorbis identification header of a tiny probe encode, the table's
guess is checked first and a bisection finds another level if a different libsndfile/libvorbis
maps it elsewhere. Every written file is read back too, and the pipeline records that value.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# Quality name (as in catalog.audio_files.quality) → target nominal kbps.
QUALITY_KBPS: dict[str, int] = {"low": 96, "normal": 160, "high": 320}
PREVIEW_KBPS = 96
PREVIEW_SECONDS = 30.0
PREVIEW_START_FRACTION = 0.30
PREVIEW_FADE_IN_S = 1.0
PREVIEW_FADE_OUT_S = 2.0

# Levels measured with libsndfile 1.2.2 / libvorbis at 44.1 kHz stereo (nominal = exact target).
_KNOWN_LEVELS: dict[int, float] = {96: 0.8, 160: 0.5, 320: 0.1}
_WRITE_BLOCK_FRAMES = 65_536  # libsndfile's Vorbis writer is happier fed in blocks than in one call


class EncodeError(RuntimeError):
    """The encoder failed or produced something unreadable: a server fault, not the upload's."""


@dataclass(frozen=True)
class VorbisInfo:
    """The fields of a Vorbis identification header (bitrates in bits/s; 0 = unset)."""

    channels: int
    sample_rate: int
    bitrate_maximum: int
    bitrate_nominal: int
    bitrate_minimum: int


@dataclass(frozen=True)
class EncodedFile:
    path: Path
    target_kbps: int
    nominal_bps: int  # read back from the written file
    compression_level: float
    frames: int
    sample_rate: int
    channels: int

    @property
    def nominal_kbps(self) -> int:
        return round(self.nominal_bps / 1000)

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / self.sample_rate)


def read_vorbis_info(source: str | os.PathLike[str] | bytes) -> VorbisInfo:
    """Parse the first Ogg page's packet, which must be the Vorbis identification header:
    ``\\x01vorbis``, version(4), channels(1), rate(4), bitrate max/nominal/min (4 each), LE."""
    if isinstance(source, bytes):
        page = source[:65_536]
    else:
        with open(source, "rb") as f:
            page = f.read(65_536)
    if len(page) < 27 or page[:4] != b"OggS" or page[4] != 0:
        raise EncodeError("not an Ogg file: the first page has no OggS header")
    nsegs = page[26]
    body = 27 + nsegs
    packet = page[body : body + 30]
    if len(packet) < 28 or packet[:7] != b"\x01vorbis":
        raise EncodeError("the first Ogg packet is not a Vorbis identification header")
    version, channels, rate, bmax, bnom, bmin = struct.unpack_from("<IBIiii", packet, 7)
    if version != 0:
        raise EncodeError(f"unknown Vorbis version {version}")
    return VorbisInfo(channels, rate, max(bmax, 0), max(bnom, 0), max(bmin, 0))


def nominal_bitrate(path: str | os.PathLike[str] | bytes) -> int:
    """The nominal bitrate in bits/s that the file's Vorbis header states (e.g. 96000)."""
    return read_vorbis_info(path).bitrate_nominal


def _probe_nominal(level: float, sample_rate: int, channels: int) -> int:
    """Nominal bitrate libvorbis chooses for ``level``: encode 50 ms of silence, read the header."""
    out = io.BytesIO()
    silence = np.zeros((sample_rate // 20, channels), dtype=np.float32)
    sf.write(out, silence, sample_rate, format="OGG", subtype="VORBIS", compression_level=level)
    return nominal_bitrate(out.getvalue())


@functools.lru_cache(maxsize=64)
def compression_level_for(kbps: int, sample_rate: int = 44_100, channels: int = 2) -> float:
    """The ``compression_level`` whose nominal bitrate is ``kbps`` (or the closest reachable).

    Nominal bitrate falls monotonically as the level rises, so when the known table does not hold
    for this rate/channel count a bisection over [0, 1] finds the level; the closest one wins when
    no level hits the target exactly, and the read-back value is what gets recorded.
    """
    target = kbps * 1000
    guess = _KNOWN_LEVELS.get(kbps)
    if guess is not None and _probe_nominal(guess, sample_rate, channels) == target:
        return guess
    lo, hi = 0.0, 1.0  # nominal(lo) is the highest, nominal(hi) the lowest
    best_level, best_err = 0.5, float("inf")
    for _ in range(24):
        mid = (lo + hi) / 2
        got = _probe_nominal(mid, sample_rate, channels)
        if abs(got - target) < best_err:
            best_level, best_err = mid, abs(got - target)
        if got == target:
            break
        if got > target:
            lo = mid
        else:
            hi = mid
    return best_level


def encode_vorbis(samples: np.ndarray, sample_rate: int, path: Path, kbps: int) -> EncodedFile:
    """Write ``samples`` ((frames, channels) float32) as Ogg Vorbis at nominal ``kbps``."""
    channels = samples.shape[1]
    level = compression_level_for(kbps, sample_rate, channels)
    try:
        with sf.SoundFile(
            path, "w", samplerate=sample_rate, channels=channels, format="OGG", subtype="VORBIS",
            compression_level=level,
        ) as out:  # fmt: skip
            for start in range(0, samples.shape[0], _WRITE_BLOCK_FRAMES):
                out.write(samples[start : start + _WRITE_BLOCK_FRAMES])
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise EncodeError(f"libsndfile could not write {path.name}: {exc}") from exc
    return EncodedFile(
        path=path,
        target_kbps=kbps,
        nominal_bps=nominal_bitrate(path),
        compression_level=level,
        frames=samples.shape[0],
        sample_rate=sample_rate,
        channels=channels,
    )


def preview_clip(
    samples: np.ndarray,
    sample_rate: int,
    *,
    seconds: float = PREVIEW_SECONDS,
    start_fraction: float = PREVIEW_START_FRACTION,
) -> np.ndarray:
    """``seconds`` from ``start_fraction`` into the track (past the intro, into the body, as store
    previews do), with equal-power fades so the clip neither clicks in nor stops dead. A track
    shorter than the clip is previewed whole; one that ends too soon starts earlier."""
    total = samples.shape[0]
    length = min(total, int(seconds * sample_rate))
    start = min(int(total * start_fraction), total - length)
    clip = samples[start : start + length].astype(np.float32, copy=True)
    fade_in = min(int(PREVIEW_FADE_IN_S * sample_rate), length // 4)
    fade_out = min(int(PREVIEW_FADE_OUT_S * sample_rate), length // 4)
    if fade_in:
        clip[:fade_in] *= np.sin(np.linspace(0.0, np.pi / 2, fade_in, dtype=np.float32))[:, None]
    if fade_out:
        clip[length - fade_out :] *= np.cos(np.linspace(0.0, np.pi / 2, fade_out, dtype=np.float32))[:, None]
    return clip
