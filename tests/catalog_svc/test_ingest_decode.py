"""Decoding uploads with PyAV: every accepted format, and every way an upload can be bad."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalog_svc.ingest.decode import TARGET_RATE, UnsupportedAudio, decode
from devdata import synth
from meshkit.errors import InvalidArgument

SECONDS = 4.0


@pytest.fixture(scope="module")
def clip() -> synth.SynthClip:
    return synth.synthesize("pop", seed=3, seconds=SECONDS)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, clip: synth.SynthClip) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    return {
        ext: synth.write_source(folder / f"pop.{ext}", clip.samples) for ext in ("wav", "flac", "mp3", "ogg")
    }


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[0], b.shape[0])
    return float(np.corrcoef(a[:n, 0], b[:n, 0])[0, 1])


@pytest.mark.parametrize(
    ("ext", "fmt", "codec", "min_similarity"),
    [
        ("wav", "wav", "pcm_s16le", 0.9999),
        ("flac", "flac", "flac", 0.9999),
        ("mp3", "mp3", "mp3float", 0.9),  # lossy: the waveform is close, not equal
        ("ogg", "ogg", "vorbis", 0.9),
    ],
)
def test_every_accepted_format_decodes_to_the_same_audio(
    sources: dict[str, Path], clip: synth.SynthClip, ext: str, fmt: str, codec: str, min_similarity: float
) -> None:
    audio = decode(sources[ext])
    assert (audio.source_format, audio.source_codec) == (fmt, codec)
    assert audio.samples.dtype == np.float32 and audio.samples.shape[1] == 2
    assert audio.sample_rate == TARGET_RATE
    assert abs(audio.duration_ms - SECONDS * 1000) <= 30  # MP3 encoder delay is trimmed via its Info frame
    assert _similarity(audio.samples, clip.samples) > min_similarity


def test_bytes_file_object_and_path_give_identical_pcm(sources: dict[str, Path]) -> None:
    path = sources["flac"]
    from_path = decode(path)
    data = path.read_bytes()
    assert np.array_equal(decode(data).samples, from_path.samples)
    assert np.array_equal(decode(bytearray(data)).samples, from_path.samples)
    assert np.array_equal(decode(io.BytesIO(data)).samples, from_path.samples)


def test_mono_is_duplicated_without_attenuation_and_48k_is_resampled(tmp_path: Path) -> None:
    t = np.arange(2 * 48_000) / 48_000
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "mono48k.wav", mono, 48_000, subtype="FLOAT")
    audio = decode(tmp_path / "mono48k.wav")
    assert (audio.source_sample_rate, audio.source_channels) == (48_000, 1)
    assert audio.sample_rate == TARGET_RATE and abs(audio.frames - 2 * TARGET_RATE) <= 2
    assert np.array_equal(audio.samples[:, 0], audio.samples[:, 1])
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.01)  # FFmpeg's upmix would give 0.354


def _reason(source: object, **kwargs: float) -> str:
    with pytest.raises(UnsupportedAudio) as caught:
        decode(source, **kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidArgument)  # → gRPC INVALID_ARGUMENT → HTTP 400
    assert caught.value.reason in caught.value.message
    return caught.value.reason


def test_empty_uploads(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    assert _reason(b"") == "empty"
    assert _reason(tmp_path / "empty.wav") == "empty"
    assert _reason(io.BytesIO()) == "empty"


def test_things_that_are_not_audio(tmp_path: Path) -> None:
    assert _reason(os.urandom(50_000)) == "not_audio"
    text = tmp_path / "notes.txt"
    text.write_text("these are not the droids you are looking for\n" * 200)
    # FFmpeg opens a .txt path as ANSI art (a video stream); the whitelist refuses it.
    assert _reason(text) in ("not_audio", "unsupported_format")
    assert _reason(text.read_bytes()) == "not_audio"
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)
    assert _reason(png) == "not_audio"
    # Playlists and concat scripts would make FFmpeg open other files; they are never probed.
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    assert _reason(playlist) == "not_audio"
    assert _reason(b"ffconcat version 1.0\nfile '/etc/passwd'\n") == "not_audio"


def test_ogg_opus_is_accepted_and_resampled(tmp_path: Path, clip: synth.SynthClip) -> None:
    sf.write(tmp_path / "a.opus.ogg", clip.samples, 48_000, format="OGG", subtype="OPUS")  # Opus is 48k-only
    audio = decode(tmp_path / "a.opus.ogg")
    assert (audio.source_format, audio.source_codec, audio.sample_rate) == ("ogg", "opus", TARGET_RATE)
    assert abs(audio.duration_ms - clip.samples.shape[0] / 48) <= 30


def test_a_video_container_is_refused(tmp_path: Path) -> None:
    import av

    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44_100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((2, 1024), dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    assert _reason(path) == "not_audio"


def test_zero_length_and_too_short_audio(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros((0, 2), dtype=np.float32), 44_100)
    assert _reason(tmp_path / "zero.wav") == "zero_length"
    sf.write(tmp_path / "blip.wav", np.zeros((2_000, 2), dtype=np.float32), 44_100)
    assert _reason(tmp_path / "blip.wav") == "too_short"


def test_longer_than_the_limit(sources: dict[str, Path]) -> None:
    assert _reason(sources["wav"], max_duration_s=2.0) == "too_long"  # refused from the header
    assert _reason(sources["ogg"], max_duration_s=3.5) == "too_long"  # refused while decoding


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg"])
def test_a_truncated_upload_is_refused(sources: dict[str, Path], ext: str) -> None:
    data = sources[ext].read_bytes()
    assert _reason(data[: len(data) // 2]) in ("truncated", "corrupt")
    assert _reason(data[:200]) in ("truncated", "not_audio", "zero_length")


def test_damage_in_the_middle_is_refused(sources: dict[str, Path]) -> None:
    data = bytearray(sources["flac"].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = os.urandom(20_000)
    assert _reason(bytes(data)) in ("corrupt", "truncated")
