"""A loaded model version: both ANN indexes plus the per-track metadata the algorithms need.

Per-track metadata is kept as arrays indexed by the track index's row number (artists and
genres as ragged integer lists), so a million tracks load without building a million Python
objects. Tracks added live append rows; nothing is ever rewritten in place.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from rec_svc.index import AnnIndex
from rec_svc.model import content
from rec_svc.model.build import Model
from rec_svc.model.params import ModelParams
from rec_svc.model.types import TrackMeta


class Ragged:
    """Rows of variable-length int lists (CSR), with rows appended after load kept on the side."""

    def __init__(self, indptr: np.ndarray, values: np.ndarray) -> None:
        self.indptr = indptr.astype(np.int64)
        self.values = values.astype(np.int64)
        self.base = int(indptr.shape[0] - 1)
        self.extra: list[np.ndarray] = []

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[int]]) -> Ragged:
        indptr = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in lists], out=indptr[1:])
        values = np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(indptr[-1]))
        return cls(indptr, values)

    def __len__(self) -> int:
        return self.base + len(self.extra)

    def __getitem__(self, row: int) -> np.ndarray:
        if row < self.base:
            return self.values[self.indptr[row] : self.indptr[row + 1]]
        return self.extra[row - self.base]

    def append(self, values: Sequence[int]) -> None:
        self.extra.append(np.asarray(values, dtype=np.int64))

    def inverse(self, n_targets: int) -> Ragged:
        """For each target value, the rows that hold it (e.g. artist -> its tracks)."""
        rows = np.repeat(np.arange(self.base, dtype=np.int64), np.diff(self.indptr))
        order = np.argsort(self.values, kind="stable")
        indptr = np.zeros(n_targets + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.values, minlength=n_targets), out=indptr[1:])
        return Ragged(indptr, rows[order])


@dataclass
class Vocabulary:
    """Ids or names <-> dense integers (artists, genres), growing as live tracks bring new ones."""

    items: list = field(default_factory=list)
    index: dict = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence) -> Vocabulary:
        items = list(items)
        return cls(items, {item: i for i, item in enumerate(items)})

    def add(self, item: object) -> int:
        found = self.index.get(item)
        if found is None:
            found = len(self.items)
            self.items.append(item)
            self.index[item] = found
        return found


@dataclass
class Snapshot:
    version: str
    built_at: datetime
    params: ModelParams
    tracks: AnnIndex
    users: AnnIndex
    artists: Vocabulary
    genres: Vocabulary
    track_artists: Ragged
    track_genres: Ragged
    features: np.ndarray  # (n_tracks, F) raw audio features, NaN unknown
    popularity: np.ndarray  # ranking score (listeners, catalog popularity as tie-break)
    catalog_popularity: np.ndarray  # 0..100
    top_indptr: np.ndarray
    top_tracks: np.ndarray
    top_scores: np.ndarray
    artist_vectors: np.ndarray  # (n_artists, 128): mean of the artist's track embeddings, unit
    genre_vectors: np.ndarray  # (n_genres, 128)
    loaded_at: datetime | None = None
    path: str = ""
    genre_axes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.artist_tracks = self.track_artists.inverse(len(self.artists.items))
        self.genre_tracks = self.track_genres.inverse(len(self.genres.items))
        self._artist_extra: dict[int, list[int]] = {}
        self._genre_extra: dict[int, list[int]] = {}
        self.popular_order = np.argsort(-self.popularity, kind="stable")
        self.build_count = len(self.tracks)

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_model(
        cls,
        model: Model,
        version: str,
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef: int = 64,
        threads: int = 1,
    ) -> Snapshot:
        artists = Vocabulary()
        genres = Vocabulary()
        track_artists = Ragged.from_lists([[artists.add(a) for a in t.artist_ids] for t in model.tracks])
        track_genres = Ragged.from_lists(
            [[genres.add(content.normalize_genre(g)) for g in t.genres] for t in model.tracks]
        )
        keys = [t.track_id for t in model.tracks]
        return cls(
            version=version,
            built_at=model.built_at,
            params=model.params,
            tracks=AnnIndex.build(
                model.track_vectors, keys, m=m, ef_construction=ef_construction, ef=ef, threads=threads
            ),
            users=AnnIndex.build(
                model.user_vectors, model.users, m=m, ef_construction=ef_construction, ef=ef, threads=threads
            ),
            artists=artists,
            genres=genres,
            track_artists=track_artists,
            track_genres=track_genres,
            features=model.features,
            popularity=model.popularity,
            catalog_popularity=np.asarray([t.popularity for t in model.tracks], dtype=np.float32),
            top_indptr=model.top_indptr,
            top_tracks=model.top_tracks,
            top_scores=model.top_scores,
            artist_vectors=_centroids(track_artists, len(artists.items), model.track_vectors),
            genre_vectors=_centroids(track_genres, len(genres.items), model.track_vectors),
            genre_axes=model.genre_axes,
        )

    # -- lookups --------------------------------------------------------------------------------

    def track_row(self, track_id: uuid.UUID) -> int | None:
        row = self.tracks.rows.get(track_id)
        return None if row is None or row in self.tracks.deleted else row

    def track_id(self, row: int) -> uuid.UUID:
        return self.tracks.keys[row]

    def tracks_of_artist(self, artist: int) -> np.ndarray:
        base = self.artist_tracks[artist] if artist < len(self.artist_tracks) else np.zeros(0, np.int64)
        extra = self._artist_extra.get(artist)
        return np.concatenate([base, np.asarray(extra, np.int64)]) if extra else base

    def tracks_of_genre(self, genre: int) -> np.ndarray:
        base = self.genre_tracks[genre] if genre < len(self.genre_tracks) else np.zeros(0, np.int64)
        extra = self._genre_extra.get(genre)
        return np.concatenate([base, np.asarray(extra, np.int64)]) if extra else base

    def user_top(self, user_row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.top_indptr[user_row], self.top_indptr[user_row + 1]
        return self.top_tracks[lo:hi], self.top_scores[lo:hi]

    def artist_vector(self, artist: int) -> np.ndarray | None:
        if artist < self.artist_vectors.shape[0] and np.any(self.artist_vectors[artist]):
            return self.artist_vectors[artist]
        rows = self.tracks_of_artist(artist)
        return _mean_unit(self.tracks.vectors(rows.tolist())) if rows.size else None

    def genre_vector(self, genre: int) -> np.ndarray | None:
        if genre < self.genre_vectors.shape[0] and np.any(self.genre_vectors[genre]):
            return self.genre_vectors[genre]
        rows = self.tracks_of_genre(genre)
        return _mean_unit(self.tracks.vectors(rows.tolist())) if rows.size else None

    def _without_artist_block(self, vectors: np.ndarray) -> np.ndarray:
        """The artist block says only "which artist": drop it when comparing artists with each other."""
        start = self.params.audio_dims + self.params.genre_dims
        out = np.array(vectors, dtype=np.float32, copy=True, ndmin=2)
        out[:, start : start + self.params.artist_dims] = 0.0
        return content.unit_rows(out)

    def related_artist_matrix(self) -> np.ndarray:
        """Artist centroids for related-artist search (computed once per version)."""
        if getattr(self, "_related", None) is None:
            self._related = self._without_artist_block(self.artist_vectors)
        return self._related

    def related_vector(self, artist: int) -> np.ndarray | None:
        vector = self.artist_vector(artist)
        return None if vector is None else self._without_artist_block(vector)[0]

    # -- live changes ---------------------------------------------------------------------------

    def add_tracks(self, metas: list[TrackMeta]) -> list[int]:
        """Tracks into the live index with their content embedding (cold start); returns their rows.

        A track the build embedded keeps its vector (it has listening data the content alone
        lacks; the next build refreshes it). A track added live since the build is re-embedded,
        which is how audio features that ingest produced later reach the index.
        """
        known = [m for m in metas if m.track_id in self.tracks.rows]
        fresh = list({m.track_id: m for m in metas if m.track_id not in self.tracks.rows}.values())
        for m in known:
            self.tracks.deleted.discard(self.tracks.rows[m.track_id])
        live = [m for m in known if self.tracks.rows[m.track_id] >= self.build_count]
        if live:
            rows = [self.tracks.rows[m.track_id] for m in live]
            self.tracks.update(rows, content.content_embedding(live, self.params, self.genre_axes))
            self.features[rows] = content.feature_matrix(live)
        if fresh:
            self._append(fresh)
        return [self.tracks.rows[m.track_id] for m in metas]

    def _append(self, fresh: list[TrackMeta]) -> None:
        new_rows = self.tracks.add(
            [m.track_id for m in fresh], content.content_embedding(fresh, self.params, self.genre_axes)
        )
        self.features = np.vstack([self.features, content.feature_matrix(fresh)])
        self.catalog_popularity = np.concatenate(
            [self.catalog_popularity, np.asarray([m.popularity for m in fresh], np.float32)]
        )
        self.popularity = np.concatenate(
            [self.popularity, np.asarray([m.popularity / 100.0 for m in fresh], np.float32)]
        )
        for row, meta in zip(new_rows, fresh, strict=True):
            artist_idx = [self.artists.add(a) for a in meta.artist_ids]
            genre_idx = [self.genres.add(content.normalize_genre(g)) for g in meta.genres]
            self.track_artists.append(artist_idx)
            self.track_genres.append(genre_idx)
            for a in artist_idx:
                self._artist_extra.setdefault(a, []).append(row)
            for g in genre_idx:
                self._genre_extra.setdefault(g, []).append(row)

    def delete_track(self, track_id: uuid.UUID) -> None:
        row = self.tracks.rows.get(track_id)
        if row is not None:
            self.tracks.delete(row)


def _centroids(membership: Ragged, n: int, vectors: np.ndarray) -> np.ndarray:
    """Unit mean vector of each group's member rows (zero for a group without members)."""
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    if n == 0 or membership.values.size == 0:
        return out
    rows = np.repeat(np.arange(membership.base), np.diff(membership.indptr))
    np.add.at(out, membership.values, vectors[rows])
    return content.unit_rows(out)


def _mean_unit(vectors: np.ndarray) -> np.ndarray | None:
    if vectors.shape[0] == 0:
        return None
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 1e-9 else None
