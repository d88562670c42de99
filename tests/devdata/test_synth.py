"""The genre synthesizer: deterministic, full length, and audibly (measurably) different per genre.

How fast it renders is a property of the machine, not of the code: no test here times it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalog_svc.ingest import features
from devdata import synth

SECONDS = 8.0


@pytest.fixture(scope="module")
def feats() -> dict[str, dict[str, float | int]]:
    out = {}
    for genre in synth.GENRES:
        clip = synth.synthesize(genre, seed=11, seconds=SECONDS)
        out[genre] = features.extract(clip.samples, clip.sample_rate)
    return out


def test_shape_range_and_determinism() -> None:
    for genre in synth.GENRES:
        clip = synth.synthesize(genre, seed=4, seconds=2.0)
        assert clip.samples.dtype == np.float32 and clip.samples.shape == (2 * 44_100, 2)
        assert clip.sample_rate == 44_100
        assert 0.1 < float(np.max(np.abs(clip.samples))) <= 1.0, genre
        assert np.array_equal(clip.samples, synth.synthesize(genre, seed=4, seconds=2.0).samples)
    assert not np.array_equal(
        synth.synthesize("rock", seed=1, seconds=2.0).samples,
        synth.synthesize("rock", seed=2, seconds=2.0).samples,
    )


def test_tempo_ranges_per_genre() -> None:
    ranges = {
        "rock": (120, 140),
        "electronic": (124, 128),
        "jazz": (90, 110),
        "hip-hop": (85, 95),
        "folk": (100, 100),
    }
    for genre, (lo, hi) in ranges.items():
        for seed in range(5):
            bpm = synth.synthesize(genre, seed=seed, seconds=0.5).bpm
            assert bpm is not None and lo <= bpm <= hi, (genre, bpm)
    assert synth.synthesize("ambient", seed=0, seconds=0.5).bpm is None


def test_thirty_seconds_render_as_thirty_seconds_of_sound() -> None:
    for genre in synth.GENRES:
        clip = synth.synthesize(genre, seed=2, seconds=30.0)
        assert clip.samples.shape == (30 * 44_100, 2) and clip.duration_s == 30.0, genre
        last_second = clip.samples[-44_100:]
        assert float(np.max(np.abs(last_second))) > 0.01, genre  # the patterns run to the end


def test_rock_and_hip_hop_tempos_differ(feats: dict[str, dict[str, float | int]]) -> None:
    assert abs(float(feats["rock"]["tempo"]) - float(feats["hip-hop"]["tempo"])) > 15


def test_estimated_tempo_matches_the_written_tempo() -> None:
    for genre in ("rock", "electronic", "hip-hop", "folk", "pop", "jazz"):
        clip = synth.synthesize(genre, seed=3, seconds=SECONDS)
        assert clip.bpm is not None
        assert features.extract(clip.samples, clip.sample_rate)["tempo"] == pytest.approx(clip.bpm, abs=3), (
            genre
        )


def test_genres_differ_where_a_listener_would_expect(feats: dict[str, dict[str, float | int]]) -> None:
    assert feats["ambient"]["danceability"] < feats["electronic"]["danceability"] - 0.4
    assert feats["classical"]["danceability"] < feats["pop"]["danceability"]
    assert feats["rock"]["energy"] > feats["ambient"]["energy"] + 0.3
    assert feats["classical"]["acousticness"] > feats["electronic"]["acousticness"] + 0.4
    assert feats["folk"]["acousticness"] > feats["rock"]["acousticness"]
    assert feats["jazz"]["loudness"] < feats["rock"]["loudness"]
    # Every pair of genres differs somewhere by a clear margin.
    names = ("tempo", "energy", "danceability", "acousticness", "loudness")
    scale = {"tempo": 200.0, "loudness": 60.0}
    for i, a in enumerate(synth.GENRES):
        for b in synth.GENRES[i + 1 :]:
            gap = max(abs(float(feats[a][n]) - float(feats[b][n])) / scale.get(n, 1.0) for n in names)
            assert gap > 0.04, (a, b)


def test_write_wav_and_other_source_formats(tmp_path: Path) -> None:
    clip = synth.synthesize("folk", seed=1, seconds=1.0)
    path = clip.write_wav(tmp_path / "folk.wav")
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        "WAV", "PCM_16", 44_100, 2, 44_100
    )  # fmt: skip
    for ext in ("flac", "mp3", "ogg"):
        assert synth.write_source(tmp_path / f"folk.{ext}", clip.samples).stat().st_size > 1000
    with pytest.raises(ValueError):
        synth.synthesize("polka", seed=1)
