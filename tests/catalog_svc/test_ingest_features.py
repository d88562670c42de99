"""Audio features on synthesized signals whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from catalog_svc.ingest import features

RATE = 44_100
SECONDS = 8.0
SPOTIFY_FIELDS = {"tempo", "energy", "loudness", "danceability", "acousticness", "valence", "duration_ms"}


def _stereo(mono: np.ndarray) -> np.ndarray:
    return np.repeat(mono.astype(np.float32)[:, None], 2, axis=1)


def _t() -> np.ndarray:
    return np.arange(int(SECONDS * RATE)) / RATE


def click_track(bpm: float, amplitude: float = 0.8) -> np.ndarray:
    out = np.zeros(int(SECONDS * RATE), dtype=np.float32)
    click = amplitude * np.exp(-np.arange(300) / 40.0) * np.sin(2 * np.pi * 1500 * np.arange(300) / RATE)
    for beat in np.arange(0.0, SECONDS, 60.0 / bpm):
        start = int(beat * RATE)
        end = min(out.size, start + click.size)
        out[start:end] += click[: end - start]
    return _stereo(out)


def sine(amplitude: float, hz: float = 440.0) -> np.ndarray:
    return _stereo(amplitude * np.sin(2 * np.pi * hz * _t()))


def white_noise(amplitude: float = 0.3) -> np.ndarray:
    return _stereo(np.random.default_rng(1).normal(0.0, amplitude, int(SECONDS * RATE)))


@pytest.mark.parametrize("bpm", [90.0, 120.0, 128.0, 75.0])
def test_click_track_tempo(bpm: float) -> None:
    assert features.extract(click_track(bpm), RATE)["tempo"] == pytest.approx(bpm, abs=3.0)


def test_fields_ranges_and_determinism() -> None:
    signal = click_track(120.0) + 0.3 * sine(0.3)
    first = features.extract(signal, RATE)
    assert set(first) >= SPOTIFY_FIELDS
    assert first == features.extract(signal.copy(), RATE)
    for name in ("energy", "danceability", "acousticness", "valence"):
        assert 0.0 <= first[name] <= 1.0, name
    assert first["duration_ms"] == SECONDS * 1000
    assert first["key"] in range(-1, 12) and first["mode"] in (0, 1)


def test_noise_is_more_energetic_than_a_quiet_sine() -> None:
    noise = features.extract(white_noise(), RATE)
    quiet = features.extract(sine(0.05), RATE)
    assert noise["energy"] > quiet["energy"] + 0.3


def test_a_pure_sine_is_more_acoustic_than_noise() -> None:
    assert (
        features.extract(sine(0.3), RATE)["acousticness"]
        > features.extract(white_noise(), RATE)["acousticness"] + 0.5
    )


def test_loudness_drops_six_db_when_amplitude_halves() -> None:
    full = features.extract(white_noise(0.2), RATE)["loudness"]
    half = features.extract(white_noise(0.1), RATE)["loudness"]
    assert full - half == pytest.approx(6.02, abs=0.05)
    # A sine's mean power is A²/2: amplitude 0.5 is -9.03 dBFS.
    assert features.extract(sine(0.5), RATE)["loudness"] == pytest.approx(-9.03, abs=0.05)


def test_a_steady_tone_has_no_tempo_and_no_groove() -> None:
    tone = features.extract(sine(0.5), RATE)
    assert tone["tempo"] == 0.0 and tone["danceability"] == 0.0


def test_a_click_track_is_more_danceable_than_noise() -> None:
    assert features.extract(click_track(120.0), RATE)["danceability"] > 0.6
    assert features.extract(white_noise(), RATE)["danceability"] < 0.1


def test_key_of_a_held_major_chord() -> None:
    t = _t()
    chord = sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * t) for m in (60, 64, 67))  # C E G
    feats = features.extract(_stereo(0.2 * chord), RATE)
    assert (feats["key"], feats["mode"]) == (0, 1)


def test_silence_is_reported_not_crashed_on() -> None:
    feats = features.extract(np.zeros((RATE * 2, 2), dtype=np.float32), RATE)
    assert feats["loudness"] == features.LOUDNESS_FLOOR_DB
    assert feats["tempo"] == 0.0 and feats["energy"] == 0.0
