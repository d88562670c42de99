"""Model parameters: one frozen object, saved into every index manifest.

Saving them with the version matters: a track added to the live index later must be
embedded exactly as the build embedded its cold tracks (same block sizes, weights, hashing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

DIM = 128


@dataclass(frozen=True)
class ModelParams:
    # Block sizes of the 128-d track embedding (they must add up to DIM).
    audio_dims: int = 16
    genre_dims: int = 24
    artist_dims: int = 16
    cf_dims: int = 56
    playlist_dims: int = 16
    # Relative weight of each block in the cosine similarity (blocks are unit vectors first).
    audio_weight: float = 0.15
    genre_weight: float = 0.25
    artist_weight: float = 0.15
    cf_weight: float = 0.45
    playlist_weight: float = 0.10
    # A block learnt from interactions counts fully only once n observations back it: n / (n + shrink).
    cf_shrink: float = 5.0
    playlist_shrink: float = 3.0
    # Implicit-feedback ALS (Hu, Koren, Volinsky 2008), solved with conjugate gradient.
    als_iterations: int = 12
    als_cg_steps: int = 3
    als_regularization: float = 0.1
    als_alpha: float = 10.0
    # Listening history: the window the model learns from, and how fast plays fade.
    history_days: int = 28
    model_window_days: int = 90
    recency_half_life_days: float = 14.0
    # The factorisation remembers longer than a user's 28-day profile.
    cf_half_life_days: float = 45.0
    # Skips arrive with negative weight; this scales how much they count against.
    skip_scale: float = 0.5
    # Per user, how many top tracks the collaborative path keeps.
    user_top_tracks: int = 50
    seed: int = 7

    def __post_init__(self) -> None:
        total = self.audio_dims + self.genre_dims + self.artist_dims + self.cf_dims + self.playlist_dims
        if total != DIM:
            raise ValueError(f"embedding blocks add up to {total}, expected {DIM}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelParams:
        """Tolerates keys it does not know (a manifest written by a newer build)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
