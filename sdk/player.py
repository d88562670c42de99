"""The player core: streams a track over its signed URLs, decodes it with PyAV and hands PCM to
a sink, switching quality up or down mid-track as the measured throughput allows.

Every rendition of a track has a seek index on the same time grid (one point a second): the
point for time t names the page that contains t, in every quality. So a switch at grid time t is
exact: the new rendition is fetched from its headers plus the bytes from its page for t, its
decoded audio is placed by counting samples (`aligned`: the demuxer's timestamps are not all
right mid-file), its audio before t is dropped, and the old rendition's audio from t on is never
written. The
output is one continuous signal whatever the switches (tests hold it sample for sample against
a reference decode).

The throughput is measured on the audio bytes as they arrive (the bytes of the last few chunks
over their arrival times). At each grid boundary the player steps down when the link no longer carries
the current quality with a margin, and up when it carries the next one with a wider margin for a
few seconds running, within the qualities the server offered (the user's subscription decides
those).

    with MeshClient(url, token_file=path) as client:
        result = AdaptivePlayer(client).play(track_id, WavSink("out.wav"))
"""

from __future__ import annotations

import json
import time
import wave
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import httpx
import numpy as np
from spotify.playback.v1 import playback_pb2

from sdk.client import MeshClient
from sdk.events import EventReporter, PlaybackSession

# Bytes per read of the audio response, the throughput's unit of measurement: a quarter of a second
# of the lowest quality, so a link that slows down is noticed within a second or two.
CHUNK_BYTES = 4 * 1024
# Progress events while playing (the server counts a stream at 30 s, or half of a short track).
PROGRESS_EVERY_MS = 5_000


class PlayerError(RuntimeError):
    """The track cannot be played (no audio, a refused URL, a broken file)."""


class UrlRefused(PlayerError):
    """The media origin refused a signed URL (expired, or signed under a retired key): the stream's
    URLs are asked for again."""


# Fresh signed URLs a play may ask for before it gives up (each refused URL costs one).
URL_REFRESHES = 3


class Sink(Protocol):
    """Where decoded audio goes: planar float32 frames, (channels, samples), in order."""

    def open(self, sample_rate: int, channels: int) -> None: ...
    def write(self, frames: np.ndarray) -> None: ...
    def close(self) -> None: ...


class WavSink:
    """16-bit PCM in a WAV file (the standard library's writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._out: wave.Wave_write | None = None

    def open(self, sample_rate: int, channels: int) -> None:
        self._out = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed by close(), as sinks are)
        self._out.setnchannels(channels)
        self._out.setsampwidth(2)
        self._out.setframerate(sample_rate)

    def write(self, frames: np.ndarray) -> None:
        assert self._out is not None, "open first"
        self._out.writeframes(to_s16le(frames))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


class RawSink:
    """Interleaved signed 16-bit little-endian PCM on a binary stream (stdout, a pipe to a player)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def open(self, sample_rate: int, channels: int) -> None:
        pass

    def write(self, frames: np.ndarray) -> None:
        self.stream.write(to_s16le(frames))

    def close(self) -> None:
        self.stream.flush()


class CallbackSink:
    """The caller's function gets each block of frames."""

    def __init__(self, on_frames: Callable[[np.ndarray], None]) -> None:
        self.on_frames = on_frames
        self.sample_rate = 0
        self.channels = 0

    def open(self, sample_rate: int, channels: int) -> None:
        self.sample_rate, self.channels = sample_rate, channels

    def write(self, frames: np.ndarray) -> None:
        self.on_frames(frames)

    def close(self) -> None:
        pass


def to_s16le(frames: np.ndarray) -> bytes:
    clipped = np.clip(frames.T, -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


@dataclass(frozen=True)
class Tier:
    """One quality of the track the server offered."""

    kbps: int
    url: str
    seek_index_url: str


@dataclass
class SeekIndex:
    """What the player needs of a rendition's seek index (catalog_svc/ingest/seekindex.py)."""

    sample_rate: int
    total_samples: int
    header_bytes: int
    file_size: int
    interval_ms: int
    points: list[tuple[int, int]]

    def offset_for(self, time_ms: int) -> int:
        """The byte offset of the page containing grid time `time_ms`."""
        best = self.points[0][1]
        for point_ms, offset in self.points:
            if point_ms > time_ms:
                break
            best = offset
        return best


class Throughput:
    """The throughput of the last few chunks, in kbps: their bytes over their arrival times (not an
    average of rates, which a burst out of a buffer would dominate for seconds)."""

    def __init__(self, window: int = 8) -> None:
        self._recent: deque[tuple[int, float]] = deque(maxlen=window)
        self.kbps = 0.0

    def add(self, size: int, seconds: float) -> None:
        self._recent.append((size, seconds))
        total_bytes = sum(n for n, _ in self._recent)
        total_s = sum(t for _, t in self._recent)
        self.kbps = total_bytes * 8 / 1000 / max(total_s, 1e-6)


@dataclass
class Policy:
    """When to change quality, at a grid boundary."""

    # Step down below this multiple of the current quality's bitrate.
    down_margin: float = 1.2
    # Step up above this multiple of the next quality's bitrate...
    up_margin: float = 2.0
    # ...once it has held for this many boundaries in a row.
    up_after: int = 2

    def choose(self, tiers: list[Tier], current: int, kbps: float, good_run: int) -> int:
        if kbps <= 0:
            return current
        if current > 0 and kbps < tiers[current].kbps * self.down_margin:
            lower = current
            while lower > 0 and kbps < tiers[lower].kbps * self.down_margin:
                lower -= 1
            return lower
        if current + 1 < len(tiers) and kbps > tiers[current + 1].kbps * self.up_margin:
            return current + 1 if good_run >= self.up_after else current
        return current


@dataclass
class Switch:
    at_ms: int
    from_kbps: int
    to_kbps: int
    throughput_kbps: float


@dataclass
class Played:
    """What `play` did."""

    track_id: str
    sample_rate: int
    channels: int
    samples: int
    started_kbps: int
    switches: list[Switch] = field(default_factory=list)
    bytes_by_kbps: dict[int, int] = field(default_factory=dict)
    first_audio_s: float = 0.0
    stopped_at_ms: int | None = None

    @property
    def duration_ms(self) -> float:
        return self.samples * 1000 / self.sample_rate if self.sample_rate else 0.0


class _Feed:
    """A file-like view of one rendition from a page on: its headers, then the audio bytes as they
    arrive (PyAV pulls with `read`); every chunk's arrival is measured."""

    def __init__(
        self, http: httpx.Client, tier: Tier, index: SeekIndex, start: int, meter: Throughput
    ) -> None:
        self.meter = meter
        self.downloaded = 0
        headers = http.get(tier.url, headers={"range": f"bytes=0-{index.header_bytes - 1}"})
        _expect_audio(headers)
        self._buffer = bytearray(headers.content)
        request = http.build_request("GET", tier.url, headers={"range": f"bytes={start}-"})
        self._response = http.send(request, stream=True)
        _expect_audio(self._response)
        self._chunks = self._response.iter_raw(CHUNK_BYTES)
        self._done = False

    def _pull(self) -> bool:
        started = time.perf_counter()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        self.meter.add(len(chunk), time.perf_counter() - started)
        self.downloaded += len(chunk)
        self._buffer += chunk
        return True

    def read(self, size: int = -1) -> bytes:
        want = size if size >= 0 else 1 << 62
        while len(self._buffer) < want and not self._done and self._pull():
            pass
        out = bytes(self._buffer[:want])
        del self._buffer[:want]
        return out

    def close(self) -> None:
        self._response.close()


def _expect_audio(reply: httpx.Response) -> None:
    if reply.status_code not in (200, 206):
        reply.read()
        refused = UrlRefused if reply.status_code == 403 else PlayerError
        raise refused(f"the media origin answered {reply.status_code}: {reply.text[:200]}")


class AdaptivePlayer:
    """Plays tracks of the mesh to a sink, adapting quality to the link."""

    def __init__(
        self,
        client: MeshClient,
        *,
        http: httpx.Client | None = None,
        policy: Policy | None = None,
        reporter: EventReporter | None = None,
        user_id: str = "",
        on_progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.client = client
        self.http = http or httpx.Client(timeout=30)
        self.policy = policy or Policy()
        self.reporter = reporter
        self.user_id = user_id
        # (position ms, kbps playing, measured kbps) after each block written: progress bars.
        self.on_progress = on_progress
        self._indexes: dict[str, SeekIndex] = {}

    def stream(self, track_id: str, quality: str = "auto") -> playback_pb2.GetStreamUrlResponse:
        return self.client.playback.GetStreamUrl(
            playback_pb2.GetStreamUrlRequest(track_id=track_id, quality=quality)
        )

    def tiers(self, reply: playback_pb2.GetStreamUrlResponse) -> list[Tier]:
        found = {reply.quality_kbps: Tier(reply.quality_kbps, reply.url, reply.seek_index_url)}
        for alternative in reply.alternatives:
            found.setdefault(
                alternative.quality_kbps,
                Tier(alternative.quality_kbps, alternative.url, alternative.seek_index_url),
            )
        return [found[k] for k in sorted(found)]

    def seek_index(self, tier: Tier) -> SeekIndex:
        cached = self._indexes.get(tier.seek_index_url)
        if cached is None:
            reply = self.http.get(tier.seek_index_url)
            if reply.status_code != 200:
                refused = UrlRefused if reply.status_code == 403 else PlayerError
                raise refused(f"the seek index answered {reply.status_code}")
            data = json.loads(reply.content)
            cached = SeekIndex(
                int(data["sample_rate"]),
                int(data["total_samples"]),
                int(data["header_bytes"]),
                int(data["file_size"]),
                int(data["interval_ms"]),
                [(int(t), int(o)) for t, o in data["points"]],
            )
            self._indexes[tier.seek_index_url] = cached
        return cached

    def play(
        self,
        track_id: str,
        sink: Sink,
        *,
        quality: str = "auto",
        stop_at_ms: int | None = None,
        context_uri: str = "",
    ) -> Played:
        """Play `track_id` from its start into `sink` (to its end, or until `stop_at_ms`); with
        `quality` other than "auto" (low, normal, high) the player stays at that quality."""
        started = time.perf_counter()
        reply = self.stream(track_id, quality)

        def offered(reply: playback_pb2.GetStreamUrlResponse) -> list[Tier]:
            # "auto" adapts within what the server offers; a quality the listener chose stays.
            if quality == "auto":
                return self.tiers(reply)
            return [Tier(reply.quality_kbps, reply.url, reply.seek_index_url)]

        tiers = offered(reply)
        refreshes = URL_REFRESHES
        current = next(i for i, tier in enumerate(tiers) if tier.kbps == reply.quality_kbps)
        while True:
            try:
                index = self.seek_index(tiers[current])
                break
            except UrlRefused:
                if not refreshes:
                    raise
                refreshes -= 1
                tiers = offered(self.stream(track_id, quality))
        rate, total = index.sample_rate, index.total_samples
        end = total if stop_at_ms is None else min(total, stop_at_ms * rate // 1000)
        session: PlaybackSession | None = None
        if self.reporter is not None and self.user_id:
            session = self.reporter.start(self.user_id, track_id, reply.duration_ms, context_uri=context_uri)
        played = Played(track_id, rate, 0, 0, tiers[current].kbps)
        meter = Throughput()
        position = 0  # samples written
        good_run = 0
        next_progress = PROGRESS_EVERY_MS
        opened = False
        while position < end:
            tier = tiers[current]
            run_start_ms = position * 1000 // rate
            try:
                index = self.seek_index(tier)
                feed = _Feed(self.http, tier, index, index.offset_for(run_start_ms), meter)
            except UrlRefused:
                # A URL that expired mid-session: new ones for the same qualities, then this run
                # again from the same position.
                if not refreshes:
                    raise
                refreshes -= 1
                fresh = {t.kbps: t for t in offered(self.stream(track_id, quality))}
                if tier.kbps not in fresh:
                    raise PlayerError(f"{tier.kbps} kbps is no longer offered for {track_id}") from None
                tiers = [fresh.get(t.kbps, t) for t in tiers]
                continue
            grid = index.interval_ms * rate // 1000
            switch_to: int | None = None
            try:
                container = av.open(feed, mode="r", format="ogg")  # type: ignore[call-overload]
                for first, pcm in aligned(container, from_start=run_start_ms == 0):
                    if not opened:
                        played.channels = pcm.shape[0]
                        sink.open(rate, played.channels)
                        played.first_audio_s = time.perf_counter() - started
                        opened = True
                    last = first + pcm.shape[1]
                    if last <= position:
                        continue  # before the switch point (or the start): decoded only to prime
                    block = pcm[:, max(position - first, 0) :]
                    boundary = (position // grid + 1) * grid  # the next grid time after position
                    if position + block.shape[1] >= boundary and boundary < end:
                        # A boundary: where a switch may happen. The next quality up must have
                        # been affordable for a few boundaries running before it is tried.
                        higher = tiers[current + 1].kbps if current + 1 < len(tiers) else None
                        affordable = higher is not None and meter.kbps > higher * self.policy.up_margin
                        good_run = good_run + 1 if affordable else 0
                        choice = self.policy.choose(tiers, current, meter.kbps, good_run)
                        if choice != current:
                            switch_to = choice
                            block = block[:, : boundary - position]  # this quality's audio ends here
                    block = block[:, : end - position]
                    sink.write(block)
                    position += block.shape[1]
                    if self.on_progress is not None:
                        self.on_progress(position * 1000 // rate, tier.kbps, meter.kbps)
                    if session is not None and position * 1000 // rate >= next_progress:
                        session.progress(position * 1000 // rate)
                        next_progress += PROGRESS_EVERY_MS
                    if switch_to is not None or position >= end:
                        break
                container.close()
            finally:
                feed.close()
                played.bytes_by_kbps[tier.kbps] = played.bytes_by_kbps.get(tier.kbps, 0) + feed.downloaded
            if switch_to is not None:
                at_ms = position * 1000 // rate
                played.switches.append(Switch(at_ms, tier.kbps, tiers[switch_to].kbps, meter.kbps))
                current, good_run = switch_to, 0
            elif position < end:
                break  # the file ended before its index said: keep what was played
        played.samples = position
        if session is not None:
            if position >= total:
                session.complete()
            else:
                played.stopped_at_ms = position * 1000 // rate
                session.pause(played.stopped_at_ms)
        if opened:
            sink.close()
        return played


# Frames looked at to place a stream entered mid-file (measured: 40 always sufficed, over every
# grid point of 30 renditions).
ALIGN_FRAMES = 40


def aligned(container: av.container.InputContainer, *, from_start: bool) -> Iterator[tuple[int, np.ndarray]]:
    """The decoded frames with the sample each starts at, counted along the decoded audio.

    Decoded audio is contiguous, but entered mid-file the demuxer's timestamps are not all right:
    some frames carry a timestamp off by a packet or two, the first one included. Each frame's
    timestamp minus the samples decoded before it is the stream's offset if that timestamp is
    right; the most frequent value over the first frames is the offset, and every frame is placed
    by counting from it. From the file's start the offset is zero.
    """
    frames = container.decode(audio=0)
    if from_start:
        position = 0
        for frame in frames:
            pcm = frame.to_ndarray()
            yield position, pcm
            position += pcm.shape[1]
        return
    held: list[np.ndarray] = []
    votes: Counter[int] = Counter()
    decoded = 0
    for frame in frames:
        pcm = frame.to_ndarray()
        if frame.pts is not None:
            votes[int(frame.pts) - decoded] += 1
        held.append(pcm)
        decoded += pcm.shape[1]
        if len(held) >= ALIGN_FRAMES:
            break
    position = votes.most_common(1)[0][0] if votes else 0
    for pcm in held:
        yield position, pcm
        position += pcm.shape[1]
    for frame in frames:
        pcm = frame.to_ndarray()
        yield position, pcm
        position += pcm.shape[1]


def frames_of(path: str | Path) -> Iterator[np.ndarray]:
    """Decoded frames of a whole file (a reference to compare a player's output with)."""
    with av.open(str(path), mode="r") as container:
        for frame in container.decode(audio=0):
            yield frame.to_ndarray()
