"""A small, fast, deterministic synthesizer of genre-flavoured music.

Tests and the demo-data loader need real audio whose *computed* features differ by genre (tempo,
timbre, density, beat), without shipping recordings. Each genre is a recipe of drum one-shots,
a bass line and harmony voices placed on a beat grid; everything is vectorised numpy except the
per-note placement loop (a few hundred notes for 30 s), and Karplus-Strong plucks are computed a
period at a time, so a 30-second clip renders in a fraction of a second.

``synthesize(genre, seed, seconds)`` returns float32 stereo at 44.1 kHz; same inputs, same samples.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44_100
GENRES = ("rock", "electronic", "jazz", "classical", "ambient", "hip-hop", "folk", "pop")

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class SynthClip:
    samples: np.ndarray  # (frames, 2) float32
    sample_rate: int
    genre: str
    seed: int
    bpm: float | None  # the tempo the clip was written at; None when it has no beat
    key: int  # pitch class of the tonic, 0 = C
    mode: int  # 1 major, 0 minor (Spotify's convention)

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def write_wav(self, path: Path) -> Path:
        """Write as 16-bit PCM WAV (what an uploader would send) and return the path."""
        return write_wav(path, self.samples, self.sample_rate)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    sf.write(path, samples, sample_rate, subtype="PCM_16", format="WAV")
    return path


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


class _Track:
    """A stereo mix bus on which one-shots are placed at times; clipped at the clip's end."""

    def __init__(self, seconds: float, sr: int) -> None:
        self.sr = sr
        self.n = int(seconds * sr)
        self.bus = np.zeros((self.n, 2), dtype=np.float32)

    def add(self, sound: np.ndarray, at_s: float, gain: float = 1.0, pan: float = 0.0) -> None:
        start = int(at_s * self.sr)
        if start >= self.n or start < 0:
            return
        end = min(self.n, start + sound.shape[0])
        seg = sound[: end - start] * gain
        # Constant-power pan: -1 left, +1 right.
        angle = (pan + 1) * np.pi / 4
        self.bus[start:end, 0] += seg * np.cos(angle)
        self.bus[start:end, 1] += seg * np.sin(angle)


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr), dtype=np.float32) / sr


def _env(seconds: float, sr: int, attack: float, decay: float) -> np.ndarray:
    """Linear attack then exponential decay (time constant ``decay`` s)."""
    t = _t(seconds, sr)
    env = np.exp(-np.maximum(t - attack, 0) / decay)
    if attack > 0:
        env *= np.minimum(t / attack, 1.0)
    return env.astype(np.float32)


def _adsr(seconds: float, sr: int, attack: float, release: float) -> np.ndarray:
    """Slow swell in and out: what separates pads and strings from struck sounds."""
    t = _t(seconds, sr)
    return np.clip(np.minimum(t / max(attack, 1e-3), (seconds - t) / max(release, 1e-3)), 0, 1).astype(
        np.float32
    )


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Boxcar low-pass via a running sum (vectorised; a one-pole IIR would be a Python loop)."""
    if width <= 1:
        return x
    c = np.cumsum(np.concatenate([np.zeros(width, dtype=np.float64), x.astype(np.float64)]))
    return ((c[width:] - c[:-width]) / width).astype(np.float32)


def _saw(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = _t(seconds, sr)
    return (2.0 * ((t * freq) % 1.0) - 1.0).astype(np.float32)


def _square(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = _t(seconds, sr)
    return np.where((t * freq) % 1.0 < 0.5, 1.0, -1.0).astype(np.float32)


def _sines(freqs: list[float], seconds: float, sr: int, harmonics: tuple[float, ...] = (1.0,)) -> np.ndarray:
    t = _t(seconds, sr)
    out = np.zeros_like(t)
    for f in freqs:
        for k, amp in enumerate(harmonics, start=1):
            if f * k < sr / 2:
                out += amp * np.sin(2 * np.pi * f * k * t)
    return out / max(len(freqs), 1)


class _Kit:
    """Drum one-shots, rendered once per clip and reused at every hit."""

    def __init__(self, sr: int, rng: np.random.Generator, heavy: bool = False) -> None:
        t = _t(0.5 if heavy else 0.3, sr)
        f = 45 + (160 if heavy else 110) * np.exp(-t / 0.03)
        self.kick = (np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / (0.2 if heavy else 0.09))).astype(
            np.float32
        )
        noise = rng.uniform(-1, 1, int(0.25 * sr)).astype(np.float32)
        tone = np.sin(2 * np.pi * 185 * _t(0.25, sr)).astype(np.float32)
        self.snare = (np.diff(noise, prepend=0) * 0.6 + tone * 0.5) * _env(0.25, sr, 0.0, 0.06)
        hat = np.diff(rng.uniform(-1, 1, int(0.2 * sr)).astype(np.float32), prepend=0)
        self.hat = hat * _env(0.2, sr, 0.0, 0.015)
        self.open_hat = hat * _env(0.2, sr, 0.0, 0.07)
        self.brush = _smooth(noise, 3) * _env(0.25, sr, 0.01, 0.05) * 0.5
        clap = np.zeros(int(0.2 * sr), dtype=np.float32)
        for k in range(3):  # a clap is a few noise bursts a few ms apart
            s = int(k * 0.011 * sr)
            clap[s:] += np.diff(noise[: clap.size - s], prepend=0) * _env(0.2, sr, 0.0, 0.03)[: clap.size - s]
        self.clap = clap


def _pluck(
    freq: float, seconds: float, sr: int, rng: np.random.Generator, decay: float = 0.996
) -> np.ndarray:
    """Karplus-Strong string: y[n] = decay·(y[n-P] + y[n-P-1])/2, computed one period P at a time
    (every sample of a period depends only on the previous period, so each block is one numpy op)."""
    period = max(2, int(sr / freq))
    n = int(seconds * sr)
    y = np.zeros(n + period + 1, dtype=np.float32)
    # A smoothed excitation: a finger or pick, not a white-noise hammer, so the string sounds warm.
    y[: period + 1] = _smooth(rng.uniform(-1, 1, period + 1).astype(np.float32), max(2, period // 6))
    for start in range(period + 1, y.size, period):
        end = min(start + period, y.size)
        y[start:end] = (
            decay * 0.5 * (y[start - period : end - period] + y[start - period - 1 : end - period - 1])
        )
    return y[:n]


def _chord(root_midi: int, scale: tuple[int, ...], degree: int, notes: int = 3) -> list[int]:
    """Stacked thirds on a scale degree (3 = triad, 4 = seventh chord)."""
    out = []
    for k in range(notes):
        step = degree + 2 * k
        out.append(root_midi + scale[step % 7] + 12 * (step // 7))
    return out


def _progression(rng: np.random.Generator, bars: int) -> list[int]:
    """Scale degrees, one per bar, from a few common loops."""
    loops = ((0, 5, 3, 4), (0, 3, 4, 3), (0, 4, 5, 3), (5, 3, 0, 4), (1, 4, 0, 0))
    loop = loops[int(rng.integers(len(loops)))]
    return [loop[i % len(loop)] for i in range(bars)]


@dataclass
class _Ctx:
    track: _Track
    rng: np.random.Generator
    bpm: float
    root: int  # MIDI note of the key's tonic (bass octave)
    scale: tuple[int, ...]
    seconds: float

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def sr(self) -> int:
        return self.track.sr

    def beats(self) -> range:
        return range(int(self.seconds / self.beat) + 1)

    def bars(self) -> list[int]:
        return _progression(self.rng, int(self.seconds / (4 * self.beat)) + 2)


def _rock(c: _Ctx) -> None:
    kit, sr, beat = _Kit(c.sr, c.rng), c.sr, c.beat
    prog = c.bars()
    for b in c.beats():
        at = b * beat
        if b % 4 in (0, 2):
            c.track.add(kit.kick, at, 1.0)
        if b % 4 == 2 and c.rng.random() < 0.5:
            c.track.add(kit.kick, at + beat / 2, 0.8)
        if b % 4 in (1, 3):
            c.track.add(kit.snare, at, 0.9)
        for half in (0, 1):
            c.track.add(kit.hat, at + half * beat / 2, 0.5, pan=0.4)
            c.track.add(kit.open_hat, at + half * beat / 2, 0.15, pan=-0.4)  # crash/ride wash
        chord = _chord(c.root, c.scale, prog[b // 4])
        for half in (0, 1):  # distorted saw bass in eighths on the chord root
            bass = np.tanh(4 * _saw(_hz(chord[0]), beat / 2, sr)) * _env(beat / 2, sr, 0.005, 0.2)
            c.track.add(bass, at + half * beat / 2, 0.45)
        if b % 2 == 0:  # power chord: root + fifth + octave, overdriven
            gtr = sum(
                _saw(_hz(m + 12) * d, 2 * beat, sr) for m in (chord[0], chord[0] + 7) for d in (1.0, 1.005)
            )
            c.track.add(np.tanh(3 * gtr) * _env(2 * beat, sr, 0.01, 0.6), at, 0.3, pan=-0.5)


def _electronic(c: _Ctx) -> None:
    kit, sr, beat = _Kit(c.sr, c.rng), c.sr, c.beat
    prog = c.bars()
    for b in c.beats():
        at = b * beat
        c.track.add(kit.kick, at, 1.0)  # four on the floor
        c.track.add(kit.open_hat, at + beat / 2, 0.35, pan=0.3)
        if b % 4 in (1, 3):
            c.track.add(kit.clap, at, 0.5)
        chord = _chord(c.root + 12, c.scale, prog[b // 4], 4)
        for q in range(4):  # sixteenth-note saw arpeggio, filtered
            note = chord[(b * 4 + q) % len(chord)] + 12
            arp = _smooth(_saw(_hz(note), beat / 4, sr), 6) * _env(beat / 4, sr, 0.002, 0.05)
            c.track.add(arp, at + q * beat / 4, 0.25, pan=0.4 if q % 2 else -0.4)
        bass = _smooth(_saw(_hz(chord[0] - 12), beat / 2, sr), 12) * _env(beat / 2, sr, 0.003, 0.12)
        c.track.add(bass, at + beat / 2, 0.5)


def _jazz(c: _Ctx) -> None:
    kit, sr, beat = _Kit(c.sr, c.rng), c.sr, c.beat
    prog = c.bars()
    swing = 2 / 3  # the second eighth lands two thirds into the beat
    for b in c.beats():
        at = b * beat
        c.track.add(kit.hat * 0.6, at, 0.25, pan=0.5)  # ride: ding, ding-a ding
        if b % 2 == 1:
            c.track.add(kit.hat * 0.6, at + swing * beat, 0.2, pan=0.5)
        if b % 4 in (1, 3):
            c.track.add(kit.brush, at, 0.2, pan=-0.2)
        chord = _chord(c.root + 12, c.scale, prog[b // 4], 4)
        walk = chord[b % 4 % len(chord)] - 12  # walking bass through the chord tones
        c.track.add(_sines([_hz(walk)], beat, sr, (1.0, 0.3)) * _env(beat, sr, 0.01, 0.4), at, 0.5)
        if b % 4 in (0, 2) or c.rng.random() < 0.2:  # soft comping, sometimes on the swung off-beat
            when = at + (swing * beat if b % 4 == 2 else 0.0)
            voicing = _sines([_hz(m + 12) for m in chord], 1.5 * beat, sr, (1.0, 0.15))
            c.track.add(voicing * _env(1.5 * beat, sr, 0.02, 0.5), when, 0.45, pan=-0.3)


def _classical(c: _Ctx) -> None:
    sr = c.sr
    chord_s = 4 * c.beat
    prog = c.bars()
    strings = (1.0, 0.5, 0.33, 0.25, 0.2, 0.15)  # bowed: many soft harmonics
    for i, degree in enumerate(prog):
        at = i * chord_s
        if at >= c.seconds:
            break
        chord = _chord(c.root + 12, c.scale, degree, 4)
        t = _t(chord_s * 1.3, sr)
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.2 * t)
        for k, m in enumerate(chord):
            phase = 2 * np.pi * np.cumsum(_hz(m) * vibrato) / sr
            voice = sum(a * np.sin(h * phase) for h, a in enumerate(strings, start=1))
            c.track.add(voice * _adsr(chord_s * 1.3, sr, 0.6, 0.8), at, 0.12, pan=-0.6 + 0.4 * k)
        melody = chord[-1] + 12 + c.scale[int(c.rng.integers(3))]
        t2 = _t(chord_s, sr)
        phase = 2 * np.pi * np.cumsum(_hz(melody) * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t2))) / sr
        lead = sum(a * np.sin(h * phase) for h, a in enumerate(strings[:4], start=1))
        c.track.add(lead * _adsr(chord_s, sr, 0.4, 0.6), at + c.beat, 0.1, pan=0.2)


def _ambient(c: _Ctx) -> None:
    sr = c.sr
    pad_s = 8.0
    prog = c.bars()
    wash = _smooth(c.rng.uniform(-1, 1, c.track.n).astype(np.float32), 64)
    c.track.add(wash, 0.0, 0.05)
    for i, degree in enumerate(prog):
        at = i * pad_s / 2 - 1.0  # overlapping swells, no attack anywhere
        if at >= c.seconds:
            break
        chord = _chord(c.root + 12, c.scale, degree, 4)
        pad = sum(_sines([_hz(m) * d], pad_s, sr) for m in chord for d in (0.997, 1.0, 1.003))
        c.track.add(pad * _adsr(pad_s, sr, 3.0, 3.5), max(at, 0.0), 0.12, pan=-0.3 if i % 2 else 0.3)


def _hip_hop(c: _Ctx) -> None:
    kit, sr, beat = _Kit(c.sr, c.rng, heavy=True), c.sr, c.beat
    prog = c.bars()
    for b in c.beats():
        at = b * beat
        if b % 4 == 0:  # boom-bap: kick on 1 and the "and" of 2, snare on 2 and 4
            c.track.add(kit.kick, at, 1.0)
        if b % 4 == 1:
            c.track.add(kit.kick, at + beat / 2, 0.9)
        if b % 4 == 2 and c.rng.random() < 0.6:
            c.track.add(kit.kick, at + beat * 0.75, 0.7)
        if b % 4 in (1, 3):
            c.track.add(kit.snare, at, 1.0)
        c.track.add(kit.hat, at, 0.12, pan=0.3)
        chord = _chord(c.root, c.scale, prog[b // 4])
        if b % 2 == 0:  # sub bass under the kick
            sub = _sines([_hz(chord[0] - 12)], 2 * beat, sr) * _env(2 * beat, sr, 0.01, 0.5)
            c.track.add(sub, at, 0.6)
        if b % 4 == 0:  # a dusty minor keys stab
            keys = _sines([_hz(m + 24) for m in chord], beat, sr, (1.0, 0.4, 0.2))
            c.track.add(keys * _env(beat, sr, 0.005, 0.3), at, 0.3, pan=-0.3)


def _folk(c: _Ctx) -> None:
    sr, beat = c.sr, c.beat
    prog = c.bars()
    cache: dict[int, np.ndarray] = {}

    def pluck(midi: int) -> np.ndarray:
        if midi not in cache:
            cache[midi] = _pluck(_hz(midi), 1.4 * beat, sr, c.rng)
        return cache[midi]

    for b in c.beats():
        at = b * beat
        chord = _chord(c.root + 12, c.scale, prog[b // 4])
        c.track.add(pluck(chord[0] - 12), at, 0.5, pan=-0.2)  # alternating bass
        for k, m in enumerate((chord[1], chord[2], chord[0] + 12)):  # strum, 12 ms per string
            c.track.add(pluck(m), at + beat / 2 + 0.012 * k, 0.3, pan=0.3)


def _pop(c: _Ctx) -> None:
    kit, sr, beat = _Kit(c.sr, c.rng), c.sr, c.beat
    prog = c.bars()
    pentatonic = (0, 2, 4, 7, 9)
    for b in c.beats():
        at = b * beat
        if b % 4 in (0, 2):
            c.track.add(kit.kick, at, 0.9)
        if b % 4 in (1, 3):
            c.track.add(kit.clap, at, 0.7)
            c.track.add(kit.snare, at, 0.4)
        for half in (0, 1):
            c.track.add(kit.hat, at + half * beat / 2, 0.3, pan=0.4)
        chord = _chord(c.root + 12, c.scale, prog[b // 4])
        if b % 4 == 0:
            keys = _sines([_hz(m + 12) for m in chord], 4 * beat, sr, (1.0, 0.5, 0.3, 0.2))
            c.track.add(keys * _env(4 * beat, sr, 0.01, 1.5), at, 0.35, pan=-0.3)
        c.track.add(_sines([_hz(chord[0] - 12)], beat, sr, (1.0, 0.5)) * _env(beat, sr, 0.005, 0.25), at, 0.5)
        for half in (0, 1):  # bright square lead on the major pentatonic
            note = c.root + 24 + pentatonic[int(c.rng.integers(5))]
            lead = _smooth(_square(_hz(note), beat / 2, sr), 2) * _env(beat / 2, sr, 0.005, 0.15)
            c.track.add(lead, at + half * beat / 2, 0.12, pan=0.2)


# genre → (recipe, bpm range or None for no beat, minor-key probability, output peak level)
_RECIPES: dict[str, tuple[Callable[[_Ctx], None], tuple[float, float], float, float]] = {
    "rock": (_rock, (120, 140), 0.5, 0.95),
    "electronic": (_electronic, (124, 128), 0.5, 0.95),
    "jazz": (_jazz, (90, 110), 0.3, 0.6),
    "classical": (_classical, (60, 80), 0.4, 0.6),
    "ambient": (_ambient, (60, 70), 0.3, 0.4),
    "hip-hop": (_hip_hop, (85, 95), 0.9, 0.95),
    "folk": (_folk, (100, 100), 0.2, 0.7),
    "pop": (_pop, (100, 120), 0.0, 0.9),
}
_BEATLESS = frozenset({"classical", "ambient"})


def synthesize(genre: str, seed: int = 0, seconds: float = 8.0, sample_rate: int = SAMPLE_RATE) -> SynthClip:
    """Render ``seconds`` of ``genre`` (one of ``GENRES``); the seed picks tempo, key and patterns."""
    if genre not in _RECIPES:
        raise ValueError(f"unknown genre {genre!r}; expected one of {', '.join(GENRES)}")
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    recipe, (lo, hi), minor_p, peak = _RECIPES[genre]
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(genre.encode())])
    bpm = float(round(lo + (hi - lo) * rng.random(), 1))
    scale = _MINOR if rng.random() < minor_p else _MAJOR
    root = 36 + int(rng.integers(0, 12))  # C2..B2
    track = _Track(seconds, sample_rate)
    recipe(_Ctx(track, rng, bpm, root, scale, seconds))
    mix = track.bus
    if genre in ("rock", "hip-hop", "electronic", "pop"):
        mix = np.tanh(1.5 * mix)  # bus saturation: dense, loud masters
    top = float(np.max(np.abs(mix))) or 1.0
    samples = (mix * (peak / top)).astype(np.float32)
    bpm_or_none = None if genre in _BEATLESS else bpm
    return SynthClip(samples, sample_rate, genre, seed, bpm_or_none, root % 12, int(scale == _MAJOR))


def write_source(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``samples`` as an upload would arrive, the format chosen by the suffix: ``.wav``
    (16-bit PCM), ``.flac`` and ``.mp3`` (FFmpeg's flac and libmp3lame encoders through PyAV, the
    same library that decodes uploads), or ``.ogg`` (Vorbis through libsndfile)."""
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return write_wav(path, samples, sample_rate)
    if suffix == ".ogg":
        sf.write(path, samples, sample_rate, format="OGG", subtype="VORBIS")
        return path
    if suffix not in (".flac", ".mp3"):
        raise ValueError(f"no writer for {suffix!r}; use .wav, .flac, .mp3 or .ogg")
    import av  # only needed here; keeps importing the synthesizer light

    codec, sample_format = ("flac", "s16") if suffix == ".flac" else ("libmp3lame", "fltp")
    planar = np.ascontiguousarray(samples.T.astype(np.float32))  # (channels, frames)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = cast("av.AudioStream", container.add_stream(codec, rate=sample_rate, layout=layout))
        if suffix == ".mp3":
            stream.bit_rate = 192_000
        step = stream.codec_context.frame_size or 1152
        for start in range(0, planar.shape[1], step):
            chunk = planar[:, start : start + step]
            if sample_format == "s16":  # packed int16, interleaved
                data = (np.clip(chunk, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
            else:
                data = np.ascontiguousarray(chunk)
            frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
