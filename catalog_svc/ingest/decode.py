"""Decode an uploaded source file (WAV, FLAC, MP3, Ogg) to float32 PCM at 44.1 kHz stereo.

PyAV (FFmpeg) does the demuxing, decoding and resampling; this module decides what counts as an
acceptable upload and turns every way an upload can be bad into one domain error,
``UnsupportedAudio`` (an ``InvalidArgument``), whose message a failed ingest job reports.
The container is recognised by its magic bytes and that one demuxer is named to FFmpeg, which
reads only through a file object we hand it (no probing, no protocols, no other files).

Memory: the input is never copied. A path is streamed from disk, and a ``bytes`` upload is
wrapped in a zero-copy reader; only the decoded PCM is held (preallocated from the declared
duration and trimmed in place), so a 100 MB upload costs its own bytes plus its PCM (10 min of
44.1 kHz stereo float32 is 212 MB).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import numpy as np

from catalog_svc.ingest.intake import UnsupportedAudio, after_id3, sniff_format

TARGET_RATE = 44_100
TARGET_CHANNELS = 2
DEFAULT_MAX_DURATION_S = 20 * 60.0
DEFAULT_MIN_DURATION_S = 1.0

# Container (as ``sniff_format`` names it, which is also FFmpeg's demuxer name) → the codecs we
# accept inside it: the catalog promises WAV, FLAC, MP3 and Ogg, not whatever FFmpeg can open.
ACCEPTED: dict[str, Callable[[str], bool]] = {
    "wav": lambda codec: codec.startswith("pcm_"),
    "flac": lambda codec: codec == "flac",
    "mp3": lambda codec: codec in ("mp3", "mp3float"),
    "ogg": lambda codec: codec in ("vorbis", "opus", "flac"),
}

# A file whose header states its exact length but decodes shorter was cut off or damaged.
_EXACT_LENGTH_SLACK_S = 0.05
_PROBE_BYTES = 64 * 1024  # enough for a WAV header, an MP3 Xing frame, or the largest Ogg page

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class DecodedAudio:
    """PCM in soundfile's layout: ``samples`` is float32 of shape (frames, channels)."""

    samples: np.ndarray
    sample_rate: int
    source_format: str
    source_codec: str
    source_sample_rate: int
    source_channels: int

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / self.sample_rate)


class _BufferReader(io.RawIOBase):
    """A seekable reader over a bytes-like object that never copies it (``BytesIO`` would for
    bytearray/memoryview); FFmpeg pulls small chunks through ``readinto``."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class _PcmBuffer:
    """Growable (frames, channels) float32 buffer. ``ndarray.resize`` reallocates in place, so
    neither growing past a wrong estimate nor trimming the slack holds two copies of the PCM."""

    def __init__(self, capacity_frames: int, channels: int) -> None:
        self._data = np.zeros((max(capacity_frames, 4096), channels), dtype=np.float32)
        self.frames = 0

    def append(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if self.frames + n > self._data.shape[0]:
            grown = max(self.frames + n, int(self._data.shape[0] * 1.5))
            self._data.resize((grown, self._data.shape[1]), refcheck=False)
        self._data[self.frames : self.frames + n] = block  # a mono block broadcasts to both channels
        self.frames += n

    def finish(self) -> np.ndarray:
        self._data.resize((self.frames, self._data.shape[1]), refcheck=False)
        return self._data


def decode(
    source: Source,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> DecodedAudio:
    """Decode ``source`` (a path, the upload's bytes, or a seekable binary file) to 44.1 kHz
    stereo float32. Raises ``UnsupportedAudio`` for anything that is not acceptable audio."""
    size = _source_size(source)
    if size == 0:
        raise UnsupportedAudio("empty", "the upload has no bytes")
    head, tail = _head_and_tail(source, size)
    fmt = sniff_format(head)
    if fmt is None:
        raise UnsupportedAudio("not_audio", "not a WAV, FLAC, MP3 or Ogg file")

    with contextlib.ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            reader: BinaryIO = stack.enter_context(open(source, "rb"))
        else:
            reader = _reader(source)
        try:
            # The demuxer is named, never probed, and FFmpeg only sees our reader: an upload that is
            # really a playlist or a concat script cannot make FFmpeg open other files or URLs.
            container = stack.enter_context(av.open(reader, mode="r", format=fmt))
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise UnsupportedAudio("not_audio", f"not a readable {fmt.upper()} file") from exc
        if not container.streams.audio:
            raise UnsupportedAudio("no_audio_stream", f"the {fmt} file holds no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        codec = ctx.name
        if not ACCEPTED[fmt](codec):
            raise UnsupportedAudio("unsupported_format", f"{codec} audio in a {fmt} file is not accepted")
        src_rate = int(ctx.sample_rate or 0)
        src_channels = int(ctx.channels or 0)
        if src_rate <= 0 or src_channels <= 0:
            raise UnsupportedAudio("corrupt", "the audio stream declares no sample rate or channels")

        declared_s = container.duration / av.time_base if container.duration else None
        if declared_s is not None and declared_s > max_duration_s * 1.05:
            raise UnsupportedAudio(
                "too_long",
                f"{declared_s / 60:.1f} min is longer than the {max_duration_s / 60:.0f} min limit",
            )
        samples = _decode_stream(container, stream, src_channels, declared_s, max_duration_s)

    seconds = samples.shape[0] / TARGET_RATE
    missing = _missing_audio(fmt, head, tail, size, declared_s, seconds)
    if missing:
        raise UnsupportedAudio("truncated", missing)
    if samples.shape[0] == 0:
        raise UnsupportedAudio("zero_length", "the file decodes to no audio samples")
    if seconds < min_duration_s:
        raise UnsupportedAudio(
            "too_short", f"{seconds:.2f} s is shorter than the {min_duration_s:g} s minimum"
        )
    return DecodedAudio(
        samples=samples,
        sample_rate=TARGET_RATE,
        source_format=fmt,
        source_codec=codec,
        source_sample_rate=src_rate,
        source_channels=src_channels,
    )


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    src_channels: int,
    declared_s: float | None,
    max_duration_s: float,
) -> np.ndarray:
    """Decode and resample every frame into one buffer, stopping as soon as the limit is passed
    (a lying header cannot make us decode hours of audio)."""
    # Mono is resampled as mono and duplicated: FFmpeg's mono→stereo upmix attenuates by 3 dB.
    layout = "mono" if src_channels == 1 else "stereo"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=TARGET_RATE)
    estimate_s = min(declared_s or 60.0, max_duration_s) + 1.0
    buffer = _PcmBuffer(int(estimate_s * TARGET_RATE), TARGET_CHANNELS)
    limit_frames = int(max_duration_s * TARGET_RATE)
    n_out = 1 if layout == "mono" else TARGET_CHANNELS

    def take(frames: list[av.AudioFrame]) -> None:
        for out in frames:
            block = out.to_ndarray().reshape(-1, n_out)  # packed "flt": (1, samples*channels)
            buffer.append(block)
        if buffer.frames > limit_frames:
            raise UnsupportedAudio(
                "too_long", f"the audio is longer than the {max_duration_s / 60:.0f} min limit"
            )

    try:
        for frame in container.decode(stream):
            take(resampler.resample(frame))
        take(resampler.resample(None))
    except av.FFmpegError as exc:
        raise UnsupportedAudio("corrupt", f"the audio data is damaged ({exc.strerror or exc})") from exc
    except ValueError as exc:  # e.g. the stream changed format mid-way in a way the resampler refuses
        raise UnsupportedAudio("corrupt", f"the audio data is inconsistent ({exc})") from exc
    return buffer.finish()


def _source_size(source: Source) -> int:
    if isinstance(source, str | os.PathLike):
        try:
            return os.path.getsize(source)
        except OSError as exc:
            raise FileNotFoundError(f"no upload at {os.fspath(source)!r}") from exc
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    pos = source.tell()
    end = source.seek(0, io.SEEK_END)
    source.seek(pos)
    return end - pos


def _reader(source: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return _BufferReader(source)  # type: ignore[return-value]
    return source


def _head_and_tail(source: Source, size: int) -> tuple[bytes, bytes]:
    """The first and last 64 KB: what the truncation checks need, without reading the rest."""
    n = min(size, _PROBE_BYTES)
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        return bytes(view[:n]), bytes(view[size - n :])
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            head = f.read(n)
            f.seek(size - n)
            return head, f.read(n)
    start = source.tell()
    head = source.read(n)
    source.seek(start + size - n)
    tail = source.read(n)
    source.seek(start)
    return head, tail


def _missing_audio(
    fmt: str, head: bytes, tail: bytes, size: int, declared_s: float | None, decoded_s: float
) -> str | None:
    """Why the upload holds less audio than it claims (cut off, or damaged frames that FFmpeg
    skipped), or None. FFmpeg happily decodes what it can, and for WAV and Ogg it even re-derives
    the duration from what is there, so each container is checked by its own rule."""
    if fmt == "wav" and _wav_data_missing(head, size):
        return "the file ends before the end of the audio data its WAV header announces"
    if fmt == "ogg" and _ogg_last_page_incomplete(tail, size):
        return "the file ends in the middle of an Ogg page"
    # FLAC's STREAMINFO and an MP3 Xing/Info frame state the exact length: anything missing was
    # cut off or skipped as damaged.
    exact = fmt == "flac" or (fmt == "mp3" and _mp3_has_vbr_header(head))
    if exact and declared_s and decoded_s < declared_s - _EXACT_LENGTH_SLACK_S:
        return f"it holds {decoded_s:.2f} s of the {declared_s:.2f} s its header states (cut off or damaged)"
    return None


def _wav_data_missing(head: bytes, size: int) -> bool:
    """RIFF/WAVE: the ``data`` chunk declares its length; a cut-off file holds fewer bytes."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(head):
        chunk_id, chunk_size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF):  # streaming writers leave the size unset
                return False
            return pos + 8 + chunk_size > size
        pos += 8 + chunk_size + (chunk_size & 1)
    return False


def _ogg_last_page_incomplete(tail: bytes, size: int) -> bool:
    """An Ogg file ends exactly where its last page ends; a cut-off one ends inside a page."""
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        if pos + 27 <= len(tail) and tail[pos + 4] == 0:
            nsegs = tail[pos + 26]
            if pos + 27 + nsegs > len(tail):
                return True
            body = sum(tail[pos + 27 : pos + 27 + nsegs])
            return (size - len(tail)) + pos + 27 + nsegs + body > size
        pos = tail.rfind(b"OggS", 0, pos)
    return False


def _mp3_has_vbr_header(head: bytes) -> bool:
    """A Xing/Info/VBRI frame states the frame count, so FFmpeg's duration is exact rather than a
    size÷bitrate guess; only then can "fewer samples than declared" mean truncation."""
    first_frame = after_id3(head)[:512]
    return any(marker in first_frame for marker in (b"Xing", b"Info", b"VBRI"))
