"""How a listening history turns into per-(user, track) affinity.

Shared by the batch build (every user at once) and the service (one user, on demand), so a
user embedding computed live for a listener the last build did not know matches what the
build would have produced.
"""

from __future__ import annotations

import numpy as np

DAY_S = 86_400.0


def recency(ts: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """Weight of a play `age` ago: halves every `half_life_days` (future timestamps count as now)."""
    age_days = np.maximum(now - ts, 0.0) / DAY_S
    return np.power(0.5, age_days / half_life_days).astype(np.float32)


def signed(weight: np.ndarray, skip_scale: float) -> np.ndarray:
    """Completion weight as given for plays; skips (negative) scaled by how much they count against."""
    return np.where(weight < 0, weight * skip_scale, weight).astype(np.float32)


def aggregate(
    rows: np.ndarray, cols: np.ndarray, strength: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum strength per (row, col) pair: (rows, cols, net strength), sorted by row then col."""
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    key = rows.astype(np.int64) * n_cols + cols.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    net = np.bincount(inverse, weights=strength.astype(np.float64), minlength=uniq.size)
    return uniq // n_cols, uniq % n_cols, net.astype(np.float32)


def affinity(
    track_idx: np.ndarray,
    ts: np.ndarray,
    weight: np.ndarray,
    now: float,
    *,
    half_life_days: float,
    skip_scale: float,
) -> dict[int, float]:
    """One user's net, recency- and completion-weighted affinity per track (negative: mostly skipped)."""
    strength = recency(ts, now, half_life_days) * signed(weight, skip_scale)
    out: dict[int, float] = {}
    for track, value in zip(track_idx.tolist(), strength.tolist(), strict=True):
        out[track] = out.get(track, 0.0) + value
    return out


def damp(values: np.ndarray) -> np.ndarray:
    """Signed log damping, so a track replayed fifty times does not drown the rest of a profile."""
    return (np.sign(values) * np.log1p(np.abs(values))).astype(np.float32)


def profile_vector(track_vectors: np.ndarray, affinities: np.ndarray) -> np.ndarray | None:
    """A user embedding: affinity-weighted sum of track embeddings (skips subtract), unit length.

    None when nothing positive backs it (a user who only skipped, or has no history).
    """
    if affinities.size == 0 or not np.any(affinities > 0):
        return None
    vec = damp(affinities) @ track_vectors
    norm = float(np.linalg.norm(vec))
    if norm <= 1e-9:
        return None
    return (vec / norm).astype(np.float32)
