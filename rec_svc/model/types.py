"""The model builder's inputs: plain in-memory data, independent of where it came from.

The builder never talks to a database or another service. Adapters produce these objects:
`rec_svc.inputs` from rec's own copy of the listening history (fed by `streams.counted.v1`,
skips by `playback.events.v1`) and the catalog's gRPC API; `devdata.rec_world` from a
generated world for the offline evaluation. Keeping the boundary this small is what lets the
evaluation run the exact code the service runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

# Audio features the content block uses, in a fixed order (Spotify's names). Values in 0..1
# except tempo (BPM) and loudness (dB), which content.py rescales.
FEATURE_NAMES: tuple[str, ...] = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "speechiness",
    "liveness",
    "tempo",
    "loudness",
    "mode",
)


@dataclass(frozen=True)
class Play:
    """One entry of a user's history as rec stores it."""

    track_id: uuid.UUID
    at: datetime
    weight: float = 1.0


@dataclass(frozen=True)
class TrackMeta:
    """What the catalog knows about a track that matters for recommendations."""

    track_id: uuid.UUID
    artist_ids: tuple[uuid.UUID, ...] = ()
    genres: tuple[str, ...] = ()
    # Audio features by FEATURE_NAMES; None until ingest has analysed the audio.
    features: Mapping[str, float] | None = None
    # Catalog popularity 0..100 (a prior for cold start and the popularity fallback).
    popularity: float = 0.0


@dataclass(frozen=True)
class Interactions:
    """Listening history in columns, because histories run to millions of rows.

    `weight` is completion-weighted: a completed (counted) play is 1.0, a partial play its
    completed fraction, and a skip is negative (a skip counts against the track).
    """

    users: tuple[uuid.UUID, ...]
    tracks: tuple[uuid.UUID, ...]
    user_idx: np.ndarray  # int32, index into users
    track_idx: np.ndarray  # int32, index into tracks
    ts: np.ndarray  # float64, POSIX seconds
    weight: np.ndarray  # float32

    def __len__(self) -> int:
        return int(self.user_idx.shape[0])

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[uuid.UUID, uuid.UUID, datetime | float, float]]) -> Interactions:
        """Build from (user, track, time, weight) rows in any order."""
        users: dict[uuid.UUID, int] = {}
        tracks: dict[uuid.UUID, int] = {}
        u_idx: list[int] = []
        t_idx: list[int] = []
        ts: list[float] = []
        weights: list[float] = []
        for user, track, at, weight in rows:
            u_idx.append(users.setdefault(user, len(users)))
            t_idx.append(tracks.setdefault(track, len(tracks)))
            ts.append(at.timestamp() if isinstance(at, datetime) else float(at))
            weights.append(weight)
        return cls(
            users=tuple(users),
            tracks=tuple(tracks),
            user_idx=np.asarray(u_idx, dtype=np.int32),
            track_idx=np.asarray(t_idx, dtype=np.int32),
            ts=np.asarray(ts, dtype=np.float64),
            weight=np.asarray(weights, dtype=np.float32),
        )

    @classmethod
    def empty(cls) -> Interactions:
        return cls.from_rows(())

    def window(self, start: float, end: float) -> Interactions:
        """The rows with start <= ts < end (vocabularies unchanged)."""
        keep = (self.ts >= start) & (self.ts < end)
        return Interactions(
            self.users,
            self.tracks,
            self.user_idx[keep],
            self.track_idx[keep],
            self.ts[keep],
            self.weight[keep],
        )


@dataclass(frozen=True)
class ModelInputs:
    """Everything one model build reads."""

    now: datetime
    tracks: Sequence[TrackMeta]
    interactions: Interactions
    # Track lists of playlists (co-occurrence); optional, empty when the source has none.
    playlists: Sequence[Sequence[uuid.UUID]] = field(default_factory=tuple)


class InputSource(Protocol):
    """Where a batch build gets its inputs from (rec's store + catalog, or a synthetic world)."""

    async def load(self, now: datetime) -> ModelInputs: ...
