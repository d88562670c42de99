"""One model build: track embeddings, user embeddings, users' top tracks and popularity.

Pure numpy and deterministic for a seed: the same inputs give the same arrays, which is what
makes an offline evaluation repeatable and a rebuilt version comparable with the last.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from rec_svc.model import als, content, weighting
from rec_svc.model.params import ModelParams
from rec_svc.model.types import ModelInputs, TrackMeta


@dataclass
class Model:
    """The arrays a version is made of (rows of the track arrays line up with `tracks`)."""

    params: ModelParams
    built_at: datetime
    tracks: list[TrackMeta]
    track_vectors: np.ndarray  # (n_tracks, 128), unit rows
    features: np.ndarray  # (n_tracks, len(FEATURE_NAMES)), NaN where unknown
    popularity: np.ndarray  # (n_tracks,) ranking score for the popularity fallback
    listeners: np.ndarray  # (n_tracks,) distinct listeners in the history window
    users: list[uuid.UUID]
    user_vectors: np.ndarray  # (n_users, 128), unit rows
    # Each user's top tracks in the history window (CSR over users; scores are net affinity).
    top_indptr: np.ndarray
    top_tracks: np.ndarray
    top_scores: np.ndarray
    genre_axes: tuple[str, ...] = ()  # genres with an axis of their own in the genre block


def _universe(inputs: ModelInputs) -> list[TrackMeta]:
    """Catalog tracks first (their order), then tracks only the history knows, by id."""
    tracks = list(inputs.tracks)
    known = {t.track_id for t in tracks}
    extra = sorted({t for t in inputs.interactions.tracks if t not in known} - known)
    for playlist in inputs.playlists:
        extra.extend(t for t in playlist if t not in known and t not in extra)
    return tracks + [TrackMeta(track_id=t) for t in sorted(set(extra))]


def _cf_factors(
    inputs: ModelInputs, track_rows: np.ndarray, n_tracks: int, now: float, params: ModelParams
) -> tuple[np.ndarray, np.ndarray]:
    """ALS track factors over the model window, and how many listeners back each track."""
    inter = inputs.interactions.window(now - params.model_window_days * weighting.DAY_S, now + 1)
    cols = track_rows[inter.track_idx] if len(inter) else np.zeros(0, np.int64)
    strength = weighting.recency(inter.ts, now, params.cf_half_life_days) * weighting.signed(
        inter.weight, params.skip_scale
    )
    obs = als.observations(
        len(inputs.interactions.users), n_tracks, inter.user_idx, cols, strength, params.als_alpha
    )
    support = np.bincount(obs.cols[obs.preference > 0], minlength=n_tracks)
    return _track_factors(obs, support, params.cf_dims, params, seed=params.seed)


def _playlist_factors(
    inputs: ModelInputs, index: dict[uuid.UUID, int], n_tracks: int, params: ModelParams
) -> tuple[np.ndarray, np.ndarray]:
    """Co-occurrence in playlists: a playlist x track factorisation (playlists play the users' part)."""
    rows: list[int] = []
    cols: list[int] = []
    for p, playlist in enumerate(inputs.playlists):
        for track in playlist:
            rows.append(p)
            cols.append(index[track])
    if not rows:
        return np.zeros((n_tracks, params.playlist_dims), np.float32), np.zeros(n_tracks, np.float32)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    obs = als.observations(
        len(inputs.playlists), n_tracks, r, c, np.ones(r.size, np.float32), params.als_alpha
    )
    return _track_factors(
        obs, np.bincount(obs.cols, minlength=n_tracks), params.playlist_dims, params, seed=params.seed + 1
    )


def _track_factors(
    obs: als.Observations, support: np.ndarray, dims: int, params: ModelParams, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """ALS item factors with the model's hyper-parameters, zeroed where nothing supports a track."""
    _, factors = als.factorize(
        obs,
        dims,
        iterations=params.als_iterations,
        regularization=params.als_regularization,
        cg_steps=params.als_cg_steps,
        seed=seed,
    )
    factors[support == 0] = 0.0
    return factors, support.astype(np.float32)


def build_model(inputs: ModelInputs, params: ModelParams | None = None) -> Model:
    params = params or ModelParams()
    now = inputs.now.timestamp()
    tracks = _universe(inputs)
    index = {t.track_id: i for i, t in enumerate(tracks)}
    n = len(tracks)
    # Interaction track vocabulary -> rows of `tracks`.
    track_rows = np.asarray([index[t] for t in inputs.interactions.tracks], dtype=np.int64)

    axes = content.genre_axes(tracks, params.genre_dims)
    audio, genre, artist = content.content_blocks(tracks, params, axes)
    cf, cf_support = _cf_factors(inputs, track_rows, n, now, params)
    pl, pl_support = _playlist_factors(inputs, index, n, params)
    vectors = content.compose(
        params,
        audio,
        genre,
        artist,
        cf,
        pl,
        cf_support / (cf_support + params.cf_shrink),
        pl_support / (pl_support + params.playlist_shrink),
    )

    # The user side: the last `history_days` only, recency- and completion-weighted.
    recent = inputs.interactions.window(now - params.history_days * weighting.DAY_S, now + 1)
    strength = weighting.recency(recent.ts, now, params.recency_half_life_days) * weighting.signed(
        recent.weight, params.skip_scale
    )
    cols = track_rows[recent.track_idx] if len(recent) else np.zeros(0, np.int64)
    u_rows, t_cols, net = weighting.aggregate(recent.user_idx, cols, strength, n)
    users, user_vectors, top = _users(inputs, u_rows, t_cols, net, vectors, params)

    listeners = np.bincount(t_cols[net > 0], minlength=n).astype(np.float32)
    catalog_pop = np.asarray([t.popularity for t in tracks], dtype=np.float32)
    popularity = listeners + catalog_pop / 100.0  # plays rank first; catalog popularity breaks ties
    return Model(
        params=params,
        built_at=inputs.now,
        tracks=tracks,
        track_vectors=vectors,
        features=content.feature_matrix(tracks),
        popularity=popularity.astype(np.float32),
        listeners=listeners,
        users=users,
        user_vectors=user_vectors,
        top_indptr=top[0],
        top_tracks=top[1],
        top_scores=top[2],
        genre_axes=axes,
    )


def _users(
    inputs: ModelInputs,
    u_rows: np.ndarray,
    t_cols: np.ndarray,
    net: np.ndarray,
    vectors: np.ndarray,
    params: ModelParams,
) -> tuple[list[uuid.UUID], np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """User embeddings and top tracks for every user with a positive profile in the window."""
    n_users = len(inputs.interactions.users)
    bounds = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u_rows, minlength=n_users), out=bounds[1:])
    # Embeddings for all users at once: a sparse (users x tracks) times (tracks x 128) product.
    damped = weighting.damp(net)
    summed = np.zeros((n_users, vectors.shape[1]), dtype=np.float32)
    np.add.at(summed, u_rows, damped[:, None] * vectors[t_cols])
    positive = np.bincount(u_rows[net > 0], minlength=n_users) > 0
    norms = np.linalg.norm(summed, axis=1)
    keep = np.flatnonzero(positive & (norms > 1e-9))
    user_ids = [inputs.interactions.users[u] for u in keep.tolist()]
    user_vectors = (summed[keep] / norms[keep, None]).astype(np.float32)

    indptr = [0]
    top_tracks: list[np.ndarray] = []
    top_scores: list[np.ndarray] = []
    for u in keep.tolist():
        lo, hi = bounds[u], bounds[u + 1]
        scores = net[lo:hi]
        order = np.argsort(-scores, kind="stable")[: params.user_top_tracks]
        order = order[scores[order] > 0]
        top_tracks.append(t_cols[lo:hi][order])
        top_scores.append(scores[order])
        indptr.append(indptr[-1] + order.size)
    return (
        user_ids,
        user_vectors.reshape(-1, vectors.shape[1]),
        (np.asarray(indptr, np.int64), _concat(top_tracks, np.int64), _concat(top_scores, np.float32)),
    )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
