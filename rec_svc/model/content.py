"""Content blocks of a track embedding: audio features, genres and artists.

These need no listening history, which is what makes cold start work: a track nobody has
played yet is embedded from its content alone, by the same function at build time and when
it is added to the live index later.

Genres: the build gives the most common genres an axis of their own (`genre_axes`, saved with
the version), so two different genres are orthogonal; the long tail, and genres first seen
after the build, are feature-hashed into the block's last GENRE_HASH_DIMS dimensions. Hashing
everything into 24 dimensions made unrelated genres collide (rock and pop at cosine 0.58 in
the demo catalog). Artists are too many for axes: they are feature-hashed (signed, two hashes).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from rec_svc.model.params import ModelParams
from rec_svc.model.types import FEATURE_NAMES, TrackMeta

GENRE_HASHES = 3
GENRE_HASH_DIMS = 8  # the tail of the genre block, shared by genres without an axis
ARTIST_HASHES = 2
# A constant component keeps near-average tracks similar to each other instead of pointing in
# arbitrary directions once the block is normalised (a cosine that behaves closer to distance).
AUDIO_BIAS = 1.0


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _hash(token: bytes, salt: int) -> int:
    digest = hashlib.blake2b(token, digest_size=8, salt=salt.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


def _hashed(tokens: Iterable[bytes], dims: int, hashes: int) -> np.ndarray:
    """Feature hashing with `hashes` signed slots per token.

    A token's slots are distinct (a salt that lands on a slot the same token already took moves
    to the next free one): two of them with opposite signs on one slot would cancel, and a track
    known only by its id would get a zero vector that cannot be normalised.
    """
    vec = np.zeros(dims, dtype=np.float32)
    for token in tokens:
        taken: set[int] = set()
        for salt in range(min(hashes, dims)):
            h = _hash(token, salt)
            slot = h % dims
            while slot in taken:
                slot = (slot + 1) % dims
            taken.add(slot)
            vec[slot] += 1.0 if (h >> 32) & 1 else -1.0
    return vec


def scaled_features(features: Mapping[str, float]) -> np.ndarray:
    """Features mapped to roughly -1..1 around a typical track (0..1 features centre on 0.5)."""
    out = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    for i, name in enumerate(FEATURE_NAMES):
        value = float(features.get(name, 0.5 if name not in ("tempo", "loudness") else 0.0))
        if name == "tempo":
            value = (min(max(value or 120.0, 40.0), 220.0) - 120.0) / 60.0
        elif name == "loudness":
            value = (min(max(value or -10.0, -40.0), 0.0) + 10.0) / 10.0
        elif name == "mode":
            value = 0.5 * (2.0 * value - 1.0)
        else:
            value = 2.0 * (min(max(value, 0.0), 1.0) - 0.5)
        out[i] = value
    return out


def audio_block(features: Mapping[str, float] | None, dims: int) -> np.ndarray:
    vec = np.zeros(dims, dtype=np.float32)
    if not features:
        return vec
    raw = scaled_features(features)
    vec[: len(raw)] = raw[:dims]
    if dims > len(raw):
        vec[len(raw)] = AUDIO_BIAS
    return vec


def normalize_genre(genre: str) -> str:
    return genre.strip().lower()


def genre_axes(tracks: Iterable[TrackMeta], dims: int) -> tuple[str, ...]:
    """The genres that get an axis: the most common ones (by tracks), as many as the block allows."""
    counts: dict[str, int] = {}
    for t in tracks:
        for g in {normalize_genre(g) for g in t.genres if g.strip()}:
            counts[g] = counts.get(g, 0) + 1
    ranked = sorted(counts, key=lambda g: (-counts[g], g))
    return tuple(ranked[: max(dims - GENRE_HASH_DIMS, 0)])


def genre_block(genres: Iterable[str], dims: int, axes: Sequence[str] = ()) -> np.ndarray:
    vec = np.zeros(dims, dtype=np.float32)
    axis = {g: i for i, g in enumerate(axes)}
    tail = [normalize_genre(g) for g in genres if g.strip() and normalize_genre(g) not in axis]
    for g in genres:
        if normalize_genre(g) in axis:
            vec[axis[normalize_genre(g)]] += 1.0
    if tail:
        start = len(axis) if len(axis) < dims else 0
        vec[start:] += _hashed((g.encode() for g in tail), dims - start, GENRE_HASHES)
    return vec


def artist_block(meta: TrackMeta, dims: int) -> np.ndarray:
    """The track's artists; a track with no known artist hashes its own id, so it is never a zero vector."""
    tokens = [a.bytes for a in meta.artist_ids] or [b"track:" + meta.track_id.bytes]
    return _hashed(tokens, dims, ARTIST_HASHES)


def content_blocks(
    tracks: list[TrackMeta], params: ModelParams, axes: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-length audio, genre and artist blocks, one row per track (zero rows where unknown)."""
    audio = np.stack([audio_block(t.features, params.audio_dims) for t in tracks]) if tracks else None
    genre = np.stack([genre_block(t.genres, params.genre_dims, axes) for t in tracks]) if tracks else None
    artist = np.stack([artist_block(t, params.artist_dims) for t in tracks]) if tracks else None
    if audio is None or genre is None or artist is None:
        return (
            np.zeros((0, params.audio_dims), np.float32),
            np.zeros((0, params.genre_dims), np.float32),
            np.zeros((0, params.artist_dims), np.float32),
        )
    return unit_rows(audio), unit_rows(genre), unit_rows(artist)


def compose(
    params: ModelParams,
    audio: np.ndarray,
    genre: np.ndarray,
    artist: np.ndarray,
    cf: np.ndarray,
    playlist: np.ndarray,
    cf_strength: np.ndarray,
    playlist_strength: np.ndarray,
) -> np.ndarray:
    """The 128-d embedding: each unit block times sqrt(weight x strength), then unit length overall.

    The inner product of two embeddings is then a weighted sum of per-block cosines, and a
    block that is missing (no features yet, no plays yet) simply drops out.
    """
    parts = [
        audio * np.sqrt(params.audio_weight),
        genre * np.sqrt(params.genre_weight),
        artist * np.sqrt(params.artist_weight),
        unit_rows(cf) * np.sqrt(params.cf_weight * cf_strength)[:, None],
        unit_rows(playlist) * np.sqrt(params.playlist_weight * playlist_strength)[:, None],
    ]
    return unit_rows(np.hstack(parts).astype(np.float32))


def content_embedding(tracks: list[TrackMeta], params: ModelParams, axes: Sequence[str] = ()) -> np.ndarray:
    """Cold-start embeddings: content blocks only (what a track gets before anyone played it)."""
    n = len(tracks)
    audio, genre, artist = content_blocks(tracks, params, axes)
    zeros = np.zeros(n, dtype=np.float32)
    return compose(
        params,
        audio,
        genre,
        artist,
        np.zeros((n, params.cf_dims), np.float32),
        np.zeros((n, params.playlist_dims), np.float32),
        zeros,
        zeros,
    )


def feature_matrix(tracks: list[TrackMeta]) -> np.ndarray:
    """Raw audio features (FEATURE_NAMES order) for tunable filters; NaN where unknown."""
    out = np.full((len(tracks), len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    for i, t in enumerate(tracks):
        if t.features:
            for j, name in enumerate(FEATURE_NAMES):
                if name in t.features:
                    out[i, j] = float(t.features[name])
    return out


def track_uuid_bytes(ids: Iterable[uuid.UUID]) -> np.ndarray:
    """UUIDs as a (n, 16) uint8 array: compact in .npz files and back with uuid.UUID(bytes=...)."""
    return np.frombuffer(b"".join(i.bytes for i in ids), dtype=np.uint8).reshape(-1, 16)
