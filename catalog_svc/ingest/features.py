"""Audio features from the signal, numpy only, under Spotify's field names.

These are transparent proxies, not Spotify's trained models: each value is a documented function
of a few signal statistics, deterministic for the same PCM, and ordered the way a listener would
order tracks (noise is more energetic than a quiet sine, a click track is more danceable than a
pad). They feed recommendations (track embeddings) and the Web API's ``audio-features`` object.

Analysis runs on a mono mix decimated to 22.05 kHz, with a 1024-point STFT and a 256-sample hop
(86 frames/s), computed in blocks so a 20-minute track never materialises its whole spectrogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FFT = 1024
HOP = 256
N_BANDS = 40
CHROMA_N_FFT = 8192
BLOCK_FRAMES = 2048
TEMPO_MIN_BPM = 50.0
TEMPO_MAX_BPM = 210.0
TEMPO_PRIOR_BPM = 130.0  # centre of the one-octave log-normal prior that settles octave ambiguity
# (multiple of the candidate period, weight) in the tempo score: the period itself, plus its half,
# since a real beat is subdivided (eighth notes) while a syncopation lag (1.5 or 0.75 beats) is not.
# Measured on 120 synthesized clips: plain autocorrelation mistook 3 for 2/3 or 1/2 of their
# tempo, this scoring none; click tracks come out right from 55 to 150 BPM (faster ones halve).
COMB = ((1.0, 1.0), (0.5, 0.25))
MIN_ONSET_SALIENCE = 0.25  # below this mean onset strength there are no beats to time
LOUDNESS_FLOOR_DB = -70.0  # EBU R128's absolute gate; silence reports this, not -inf
_EPS = 1e-10

# Krumhansl-Kessler key profiles (major, minor), C first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class _SpectralStats:
    """What one pass over the STFT accumulates."""

    onset: np.ndarray  # onset strength per frame
    flatness: float  # energy-weighted mean spectral flatness, 0 (tonal) .. ~0.56 (white noise)
    centroid_hz: float  # energy-weighted mean spectral centroid
    hf_ratio: float  # share of power above 4 kHz
    chroma: np.ndarray  # peak magnitude per pitch class, 100 Hz .. 5 kHz
    frame_rate: float


def extract(samples: np.ndarray, sample_rate: int) -> dict[str, float | int]:
    """Features of ``samples`` ((frames, channels) or (frames,) float PCM at ``sample_rate``)."""
    pcm = samples if samples.ndim == 2 else samples[:, None]
    duration_ms = round(pcm.shape[0] * 1000 / sample_rate)
    loudness = integrated_loudness(pcm, sample_rate)

    analysis, rate = _analysis_mono(pcm, sample_rate)
    stats = _spectral_stats(analysis, rate)
    tempo, pulse, beat_salience = _tempo(stats.onset, stats.frame_rate)
    key, mode, major_ness = _key_and_mode(stats.chroma)

    # Scale-free 0..1 terms the features share.
    loud_term = _clip01((loudness + 30.0) / 24.0)  # -30 dBFS → 0, -6 dBFS → 1
    onsets = _clip01(beat_salience / 8.0)  # how hard and how often things hit
    tonal = _clip01((-10.0 * np.log10(stats.flatness + _EPS) - 10.0) / 25.0)  # 1 = peaky spectrum
    mellow = _clip01((-10.0 * np.log10(stats.hf_ratio + _EPS) - 8.0) / 30.0)  # 1 = little above 4 kHz
    bright = _clip01(np.log2(max(stats.centroid_hz, 1.0) / 200.0) / np.log2(3000.0 / 200.0))
    beat = pulse * _clip01(beat_salience / 4.0)  # a regular pulse that is also strong

    energy = 0.55 * loud_term + 0.25 * onsets + 0.2 * (1.0 - mellow)
    acousticness = 0.5 * tonal + 0.5 * mellow
    tempo_fit = float(np.exp(-0.5 * ((tempo - 118.0) / 30.0) ** 2)) if tempo else 0.0
    danceability = beat * (0.7 + 0.3 * tempo_fit)
    tempo_term = _clip01((tempo - 60.0) / 100.0) if tempo else 0.0
    valence = 0.5 * major_ness + 0.3 * bright + 0.2 * tempo_term * beat
    return {
        "tempo": round(tempo, 3),
        "energy": round(_clip01(energy), 3),
        "loudness": round(loudness, 3),
        "danceability": round(danceability, 3),
        "acousticness": round(_clip01(acousticness), 3),
        "valence": round(_clip01(valence), 3),
        "key": key,
        "mode": mode,
        "duration_ms": duration_ms,
    }


def _mono(pcm: np.ndarray) -> np.ndarray:
    return pcm.mean(axis=1, dtype=np.float32) if pcm.ndim == 2 else pcm.astype(np.float32, copy=False)


def integrated_loudness(pcm: np.ndarray, sample_rate: int) -> float:
    """Gated mean power of the mono mix in dBFS, after EBU R128 without the K-weighting: 400 ms
    blocks, blocks under -70 dBFS dropped, then blocks 10 dB under that mean dropped. Gains shift
    it exactly (half the amplitude is -6.02 dB), and silence between songs does not drag it down.
    Computed ~100 s at a time, so a long track costs no whole-track temporaries."""
    block = int(0.4 * sample_rate)
    n = pcm.shape[0] // block
    if n == 0:
        power = np.array([np.mean(np.square(_mono(pcm), dtype=np.float64))]) if pcm.size else np.zeros(1)
    else:
        parts = []
        for first in range(0, n, 256):
            last = min(first + 256, n)
            blocks = _mono(pcm[first * block : last * block]).reshape(last - first, block)
            parts.append(np.mean(np.square(blocks, dtype=np.float64), axis=1))
        power = np.concatenate(parts)
    gated = power[power > 10 ** (LOUDNESS_FLOOR_DB / 10)]
    if gated.size == 0:
        return LOUDNESS_FLOOR_DB
    relative = gated[gated > np.mean(gated) * 10 ** (-10 / 10)]
    return max(LOUDNESS_FLOOR_DB, float(10 * np.log10(np.mean(relative))))


def _analysis_mono(pcm: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """The mono mix, halved in rate above 32 kHz by pair-averaging (plenty for rhythm and timbre,
    half the work), built a chunk at a time so no full-rate mono copy of the track exists."""
    if sample_rate < 32_000:
        return _mono(pcm), sample_rate
    n = pcm.shape[0] // 2
    out = np.empty(n, dtype=np.float32)
    chunk = 1 << 20
    for start in range(0, n, chunk):
        mono = _mono(pcm[2 * start : 2 * min(start + chunk, n)])
        out[start : start + mono.shape[0] // 2] = 0.5 * (mono[0::2] + mono[1::2])
    return out, sample_rate // 2


def _band_matrix(sample_rate: int) -> np.ndarray:
    """Triangular log-spaced bands (30 Hz .. 10 kHz) that pool FFT bins for onset detection."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    edges = np.geomspace(30.0, min(10_000.0, sample_rate / 2 * 0.95), N_BANDS + 2)
    bands = np.zeros((freqs.size, N_BANDS))
    for b in range(N_BANDS):
        lo, mid, hi = edges[b : b + 3]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        bands[:, b] = np.clip(np.minimum(rise, fall), 0, None)
    return bands


def _spectral_stats(x: np.ndarray, sample_rate: int) -> _SpectralStats:
    frame_rate = sample_rate / HOP
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    window = np.hanning(N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    bands = _band_matrix(sample_rate)
    hf = freqs >= 4000.0

    onset = np.zeros(frames.shape[0])
    total_power = hf_power = flat_sum = centroid_sum = weight_sum = 0.0
    previous: np.ndarray | None = None
    for start in range(0, frames.shape[0], BLOCK_FRAMES):
        block = frames[start : start + BLOCK_FRAMES] * window
        power = np.square(np.abs(np.fft.rfft(block, axis=1)))
        frame_power = power.sum(axis=1)
        total_power += float(frame_power.sum())
        hf_power += float(power[:, hf].sum())

        # Flatness and centroid of audible frames only, weighted by their power.
        spectrum = power[:, 1:] + _EPS
        flat = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
        centroid = (power @ freqs) / (frame_power + _EPS)
        weights = np.where(frame_power > _EPS * 1e4, frame_power, 0.0)
        flat_sum += float(flat @ weights)
        centroid_sum += float(centroid @ weights)
        weight_sum += float(weights.sum())

        # Onset strength: half-wave rectified rise of log band energy (spectral flux).
        logbands = np.log1p(1000.0 * (power @ bands))
        stacked = logbands if previous is None else np.vstack([previous, logbands])
        flux = np.maximum(np.diff(stacked, axis=0), 0.0).sum(axis=1)
        if previous is None:
            flux = np.concatenate([[0.0], flux])
        onset[start : start + block.shape[0]] = flux
        previous = logbands[-1:]

    return _SpectralStats(
        onset=onset,
        flatness=flat_sum / weight_sum if weight_sum else 0.0,
        centroid_hz=centroid_sum / weight_sum if weight_sum else 0.0,
        hf_ratio=hf_power / total_power if total_power > 0 else 0.0,
        chroma=_chroma(x, sample_rate),
        frame_rate=frame_rate,
    )


def _chroma(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Pitch-class profile from spectral peaks of a long (8192-point) STFT.

    The rhythm STFT's 21.5 Hz bins span several semitones below 300 Hz and its window skirts
    leak into neighbouring pitch classes, which drowns the key; 2.7 Hz bins and counting only
    local maxima keep each note in its own class.
    """
    n_fft = CHROMA_N_FFT
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    usable = (freqs >= 100.0) & (freqs <= 5000.0)
    pitch_class = np.zeros(freqs.size, dtype=np.int64)
    pitch_class[usable] = np.round(69 + 12 * np.log2(freqs[usable] / 440.0)).astype(np.int64) % 12
    window = np.hanning(n_fft).astype(np.float32)
    chroma = np.zeros(12)
    for start in range(0, frames.shape[0], 64):
        mag = np.abs(np.fft.rfft(frames[start : start + 64] * window, axis=1))
        peaks = np.zeros_like(mag, dtype=bool)
        peaks[:, 1:-1] = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
        peaks &= usable
        peaks &= mag > 0.01 * mag.max(axis=1, keepdims=True)  # ignore the noise floor
        chroma += np.bincount(pitch_class[peaks.nonzero()[1]], weights=mag[peaks], minlength=12)
    return chroma


def _tempo(onset: np.ndarray, frame_rate: float) -> tuple[float, float, float]:
    """(BPM, pulse clarity 0..1, salience) from the autocorrelation of the onset envelope.

    The envelope loses its slow trend (a 1 s moving average) so swells are not mistaken for beats.
    The beat period is the lag over 50..210 BPM with the best ``COMB`` score (autocorrelation at the
    period and at its half) under a one-octave log-normal prior around 130 BPM, refined to a
    fraction of a frame by a parabola through the peak. Pulse clarity is the autocorrelation at
    the beat and at the bar relative to lag 0. Salience is the mean detrended onset strength
    (log-energy rise per frame): a steady tone, whose flux is only numerical ripple however
    periodic, has no tempo (0.0) rather than a confident wrong one.
    """
    if onset.size < 4 * frame_rate:
        return 0.0, 0.0, 0.0
    width = int(frame_rate)
    kernel = np.ones(width) / width
    trend = np.convolve(onset, kernel, mode="same")
    env = np.maximum(onset - trend, 0.0)
    salience = float(env.mean())
    if salience < MIN_ONSET_SALIENCE:
        return 0.0, 0.0, salience
    env -= env.mean()
    size = 1 << int(np.ceil(np.log2(2 * env.size)))
    spectrum = np.fft.rfft(env, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: env.size]
    ac /= np.arange(env.size, 0, -1)  # unbiased: long lags are not penalised for overlapping less
    if ac[0] <= 0:
        return 0.0, 0.0, salience
    ac /= ac[0]
    lo = max(2, int(frame_rate * 60.0 / TEMPO_MAX_BPM))
    hi = min(env.size // 2, int(np.ceil(frame_rate * 60.0 / TEMPO_MIN_BPM)) + 1)
    if hi <= lo + 2:
        return 0.0, 0.0, salience
    lags = np.arange(lo, hi)
    bpms = 60.0 * frame_rate / lags
    prior = np.exp(-0.5 * np.log2(bpms / TEMPO_PRIOR_BPM) ** 2)
    positive = np.clip(ac, 0, None)
    usable = int(0.75 * env.size)
    comb = np.zeros(lags.size)
    for multiple, weight in COMB:
        at = np.minimum(np.round(multiple * lags).astype(np.int64), usable - 1)
        comb += weight * np.where(multiple * lags < usable, positive[at], positive[lags])
    scores = comb / sum(w for _, w in COMB) * prior
    peak = int(np.argmax(scores)) + lo
    if scores[peak - lo] <= 0:
        return 0.0, 0.0, salience
    a, b, c = ac[peak - 1], ac[peak], ac[peak + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    lag = peak + float(np.clip(shift, -0.5, 0.5))
    # Regularity at the beat and at the bar (4 beats): a syncopated groove that repeats every bar
    # is as regular as a metronome to a dancer, though its beat-lag correlation is lower.
    bar = round(4 * lag)
    bar_ac = float(np.max(ac[bar - 1 : bar + 2])) if bar + 2 < ac.size - env.size // 4 else float(b)
    return 60.0 * frame_rate / lag, _clip01(0.5 * float(b) + 0.5 * bar_ac), salience


def _key_and_mode(chroma: np.ndarray) -> tuple[int, int, float]:
    """(key 0..11 or -1, mode 1 major / 0 minor, major-ness 0..1) by Krumhansl-Schmuckler
    correlation of the pitch-class profile against all 24 rotated key profiles."""
    if chroma.sum() <= 0 or np.std(chroma) < 1e-9 * chroma.mean():
        return -1, 1, 0.5
    profile = chroma / chroma.sum()
    best = {}
    for mode, template in ((1, _MAJOR_PROFILE), (0, _MINOR_PROFILE)):
        scores = [float(np.corrcoef(profile, np.roll(template, k))[0, 1]) for k in range(12)]
        k = int(np.argmax(scores))
        best[mode] = (scores[k], k)
    mode = 1 if best[1][0] >= best[0][0] else 0
    if max(best[1][0], best[0][0]) < 0.2:  # no tonal centre (noise, drums only)
        return -1, mode, 0.5
    major_ness = 1.0 / (1.0 + np.exp(-8.0 * (best[1][0] - best[0][0])))
    return best[mode][1], mode, float(major_ness)


def _clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))
