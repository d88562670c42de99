"""Spotify's recommendation tunables: min_*, max_* filters and target_* preferences.

Filters are hard: a track whose feature is unknown (not ingested yet) cannot satisfy a
min/max on that feature. Targets are soft: they re-rank the candidate pool by distance to the
target, each attribute scaled by its range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshkit.errors import InvalidArgument
from rec_svc.model.types import FEATURE_NAMES

# attribute -> (lowest, highest) accepted value; None = unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "energy": (0.0, 1.0),
    "danceability": (0.0, 1.0),
    "valence": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "tempo": (0.0, None),
    "loudness": (None, None),
    "popularity": (0.0, 100.0),
}
# How far apart two values must be to count as "completely different" for target scoring.
SCALE = {"tempo": 100.0, "loudness": 30.0, "popularity": 100.0}
TARGET_WEIGHT = 0.5
MISSING_PENALTY = 0.5  # target distance assumed for a track whose feature is unknown


@dataclass(frozen=True)
class Tunable:
    name: str
    minimum: float | None = None
    maximum: float | None = None
    target: float | None = None


def parse(request: object) -> list[Tunable]:
    """Read min_/max_/target_ fields that are set; INVALID_ARGUMENT for values out of range."""
    out: list[Tunable] = []
    for name, (lo, hi) in RANGES.items():
        values: dict[str, float | None] = {}
        for prefix in ("min", "max", "target"):
            field = f"{prefix}_{name}"
            value = getattr(request, field) if request.HasField(field) else None  # type: ignore[attr-defined]
            if value is not None:
                if not np.isfinite(value):
                    raise InvalidArgument(f"{field} must be a number")
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    bounds = f"{'' if lo is None else lo}..{'' if hi is None else hi}"
                    raise InvalidArgument(f"{field} must be in {bounds}, got {value}")
            values[prefix] = value
        if values["min"] is not None and values["max"] is not None and values["min"] > values["max"]:
            raise InvalidArgument(
                f"min_{name} ({values['min']}) is greater than max_{name} ({values['max']})"
            )
        if any(v is not None for v in values.values()):
            out.append(Tunable(name, values["min"], values["max"], values["target"]))
    return out


def _column(name: str, features: np.ndarray, popularity: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if name == "popularity":
        return popularity[rows].astype(np.float64)
    return features[rows, FEATURE_NAMES.index(name)].astype(np.float64)


def apply(
    tunables: list[Tunable], features: np.ndarray, popularity: np.ndarray, rows: np.ndarray, sims: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows that pass every filter; score = similarity minus weighted target distance."""
    keep = np.ones(rows.size, dtype=bool)
    score = sims.astype(np.float64).copy()
    for t in tunables:
        col = _column(t.name, features, popularity, rows)
        known = ~np.isnan(col)
        if t.minimum is not None:
            keep &= known & (np.nan_to_num(col, nan=-np.inf) >= t.minimum)
        if t.maximum is not None:
            keep &= known & (np.nan_to_num(col, nan=np.inf) <= t.maximum)
        if t.target is not None:
            scale = SCALE.get(t.name, 1.0)
            distance = np.where(known, np.abs(np.nan_to_num(col) - t.target) / scale, MISSING_PENALTY)
            score -= TARGET_WEIGHT * np.minimum(distance, 1.0)
    return rows[keep], score[keep]
