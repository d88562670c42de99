"""Discover Weekly and its parts, as pure functions of a Snapshot and one user's history.

The hybrid of docs/architecture.md, decision 9: the user's embedding from 28 days of history;
100 similar users by ANN over user embeddings and their top tracks the user has not heard
(collaborative); tracks similar to the user's liked tracks by ANN over track embeddings
(content); blended 60/40; at most 2 per artist; 30 tracks; nothing heard in the last 28 days.
The batch job, the service and the offline evaluation all call these functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from rec_svc.model import weighting
from rec_svc.model.types import Play
from rec_svc.snapshot import Snapshot

DW_SIZE = 30
MAX_PER_ARTIST = 2
COLLABORATIVE_SHARE = 0.6
NEIGHBOURS = 100
LIKED_MAX = 20  # "liked tracks": rating > LIKED_RATING, strongest first
LIKED_RATING = 0.3
CONTENT_PER_SEED = 50
POOL = 300  # candidates kept from each source before blending
RANK_FUSION_K = 20.0  # reciprocal-rank constant: how fast a candidate's weight falls with its rank


@dataclass
class UserState:
    """What the algorithms need to know about one user, resolved against one Snapshot."""

    heard_ids: frozenset[uuid.UUID]  # every track played (or skipped) in the window
    heard: frozenset[int]  # the same, as rows of the track index
    affinity: dict[int, float]  # net weighted affinity per known track row
    vector: np.ndarray | None  # user embedding; None for a user with nothing positive
    user_row: int | None  # the user's row in the user index (for excluding themselves)

    @property
    def is_new(self) -> bool:
        return self.vector is None


def user_state(snap: Snapshot, user_id: uuid.UUID, plays: Sequence[Play], now: datetime) -> UserState:
    """Resolve a history (already limited to the window) into rows, affinity and an embedding.

    The embedding is computed here from the live history rather than read from the user
    index, so a listener the last build did not know, or one whose taste moved since, is
    served from what they actually played; the function is the one the build uses.
    """
    p = snap.params
    heard_ids = frozenset(play.track_id for play in plays)
    known = [(snap.track_row(play.track_id), play) for play in plays]
    known = [(row, play) for row, play in known if row is not None]
    rows = np.asarray([row for row, _ in known], dtype=np.int64)
    ts = np.asarray([play.at.timestamp() for _, play in known], dtype=np.float64)
    weights = np.asarray([play.weight for _, play in known], dtype=np.float32)
    affinity = weighting.affinity(
        rows, ts, weights, now.timestamp(), half_life_days=p.recency_half_life_days, skip_scale=p.skip_scale
    )
    track_rows = list(affinity)
    vector = None
    if track_rows:
        vector = weighting.profile_vector(
            snap.tracks.vectors(track_rows), np.asarray([affinity[r] for r in track_rows], dtype=np.float32)
        )
    return UserState(
        heard_ids=heard_ids,
        heard=frozenset(int(r) for r in rows.tolist()),
        affinity=affinity,
        vector=vector,
        user_row=snap.users.rows.get(user_id),
    )


def _ranked(
    rows: np.ndarray, scores: np.ndarray, exclude: frozenset[int], limit: int
) -> list[tuple[int, float]]:
    """Sum scores per row, drop excluded rows, best first (ties by row for determinism)."""
    if rows.size == 0:
        return []
    uniq, inverse = np.unique(rows, return_inverse=True)
    total = np.bincount(inverse, weights=scores.astype(np.float64), minlength=uniq.size)
    order = np.lexsort((uniq, -total))
    out: list[tuple[int, float]] = []
    for i in order.tolist():
        row = int(uniq[i])
        if row in exclude or total[i] <= 0:
            continue
        out.append((row, float(total[i])))
        if len(out) >= limit:
            break
    return out


def collaborative(snap: Snapshot, state: UserState, limit: int = POOL) -> list[tuple[int, float]]:
    """Top tracks of the 100 most similar users, weighted by similarity, minus what the user heard."""
    if state.vector is None or snap.users.live == 0:
        return []
    own = frozenset({state.user_row}) if state.user_row is not None else frozenset()
    neighbours = snap.users.query(state.vector, NEIGHBOURS, exclude=own)[0]
    rows: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for user_row, similarity in neighbours:
        if similarity <= 0:
            continue
        tracks, values = snap.user_top(user_row)
        if tracks.size == 0:
            continue
        rows.append(tracks)
        scores.append(similarity * values / values.max())
    if not rows:
        return []
    return _ranked(np.concatenate(rows), np.concatenate(scores), state.heard, limit)


def liked(state: UserState) -> list[tuple[int, float]]:
    """The user's liked tracks as (row, rating 0..1): affinity relative to their favourite."""
    positive = [(row, a) for row, a in state.affinity.items() if a > 0]
    if not positive:
        return []
    top = max(a for _, a in positive)
    rated = sorted(((row, a / top) for row, a in positive), key=lambda x: (-x[1], x[0]))
    return [(row, rating) for row, rating in rated if rating > LIKED_RATING][:LIKED_MAX] or rated[:1]


def content_based(snap: Snapshot, state: UserState, limit: int = POOL) -> list[tuple[int, float]]:
    """Tracks near the user's liked tracks in embedding space, weighted by how much each is liked.

    Averaging the liked tracks into one query would land a listener with two distinct tastes
    between them; one query per liked track (batched in one hnswlib call) keeps both.
    """
    seeds = liked(state)
    if not seeds:
        return []
    vectors = snap.tracks.vectors([row for row, _ in seeds])
    results = snap.tracks.query(vectors, CONTENT_PER_SEED, exclude=state.heard)
    rows = np.asarray([row for hits in results for row, _ in hits], dtype=np.int64)
    scores = np.asarray(
        [rating * max(sim, 0.0) for (_, rating), hits in zip(seeds, results, strict=True) for _, sim in hits],
        dtype=np.float32,
    )
    return _ranked(rows, scores, state.heard, limit)


class Diversifier:
    """Accepts tracks in order while keeping at most `max_per_artist` per artist and no repeats."""

    def __init__(
        self, snap: Snapshot, exclude: Iterable[int] = (), max_per_artist: int = MAX_PER_ARTIST
    ) -> None:
        self.snap = snap
        self.max_per_artist = max_per_artist
        self.taken: list[int] = []
        self._seen = set(exclude)
        self._per_artist: dict[int, int] = {}

    def offer(self, row: int) -> bool:
        if row in self._seen or row in self.snap.tracks.deleted:
            return False
        artists = self.snap.track_artists[row].tolist()
        if any(self._per_artist.get(a, 0) >= self.max_per_artist for a in artists):
            return False
        self._seen.add(row)
        for a in artists:
            self._per_artist[a] = self._per_artist.get(a, 0) + 1
        self.taken.append(row)
        return True


def blend(
    snap: Snapshot,
    primary: Sequence[tuple[int, float]],
    secondary: Sequence[tuple[int, float]],
    *,
    share: float = COLLABORATIVE_SHARE,
    total: int = DW_SIZE,
    exclude: frozenset[int] = frozenset(),
    diversifier: Diversifier | None = None,
) -> Diversifier:
    """Interleave two ranked lists so `share` of the picks come from `primary`, diversified.

    At each step the list that is behind its quota offers its next track; when one list runs
    dry the other fills the remaining slots.
    """
    div = diversifier or Diversifier(snap, exclude)
    lists = [list(primary), list(secondary)]
    cursors = [0, 0]
    taken = [0, 0]
    while len(div.taken) < total and (cursors[0] < len(lists[0]) or cursors[1] < len(lists[1])):
        picks = len(div.taken) + 1
        want_primary = taken[0] < share * picks
        side = 0 if (want_primary and cursors[0] < len(lists[0])) or cursors[1] >= len(lists[1]) else 1
        row = lists[side][cursors[side]][0]
        cursors[side] += 1
        if div.offer(row):
            taken[side] += 1
    return div


def agree_first(
    primary: Sequence[tuple[int, float]],
    secondary: Sequence[tuple[int, float]],
    share: float = COLLABORATIVE_SHARE,
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Both lists re-ordered by a 60/40 reciprocal-rank fusion of the two rankings.

    Each list keeps its own candidates (so the blend's 60/40 composition is unchanged), but a
    candidate that the other source also ranks moves up: agreement between similar listeners
    and similar sound is the strongest evidence either has. On the offline evaluation this
    lifts the hybrid above collaborative-only recall instead of just below it.
    """
    rank_p = {row: i for i, (row, _) in enumerate(primary)}
    rank_s = {row: i for i, (row, _) in enumerate(secondary)}

    def fused(row: int) -> float:
        score = 0.0
        if row in rank_p:
            score += share / (RANK_FUSION_K + rank_p[row])
        if row in rank_s:
            score += (1 - share) / (RANK_FUSION_K + rank_s[row])
        return score

    return sorted(primary, key=lambda x: -fused(x[0])), sorted(secondary, key=lambda x: -fused(x[0]))


def popular(
    snap: Snapshot,
    total: int,
    *,
    exclude: frozenset[int] = frozenset(),
    genres: Sequence[int] = (),
    diversifier: Diversifier | None = None,
    scan: int = 5000,
) -> Diversifier:
    """Popularity- and genre-based picks: popular tracks taken round-robin across genres.

    Preferred `genres` (e.g. those of the little a new listener played) go first; the rest
    follow in the order of their most popular track, so the list spans the catalog's genres
    instead of being the top of one chart.
    """
    div = diversifier or Diversifier(snap, exclude)
    buckets: dict[int, list[int]] = {}
    for row in snap.popular_order[:scan].tolist():
        if row in exclude:
            continue
        track_genres = snap.track_genres[row]
        key = int(track_genres[0]) if track_genres.size else -1
        buckets.setdefault(key, []).append(row)
    order = [g for g in genres if g in buckets] + [g for g in buckets if g not in genres]
    cursors = dict.fromkeys(order, 0)
    while len(div.taken) < total and order:
        progressed = False
        for g in list(order):
            bucket = buckets[g]
            while cursors[g] < len(bucket):
                row = bucket[cursors[g]]
                cursors[g] += 1
                if div.offer(row):
                    progressed = True
                    break
            if len(div.taken) >= total:
                break
        order = [g for g in order if cursors[g] < len(buckets[g])]
        if not progressed and not order:
            break
    return div


def preferred_genres(snap: Snapshot, state: UserState) -> list[int]:
    weights: dict[int, float] = {}
    for row, a in state.affinity.items():
        if a > 0:
            for g in snap.track_genres[row].tolist():
                weights[g] = weights.get(g, 0.0) + a
    return [g for g, _ in sorted(weights.items(), key=lambda x: (-x[1], x[0]))]


def discover_weekly(snap: Snapshot, state: UserState, total: int = DW_SIZE) -> tuple[list[int], str]:
    """The weekly mix as track rows, and the algorithm that produced it ("hybrid" or "popularity")."""
    if state.is_new:
        div = popular(snap, total, exclude=state.heard, genres=preferred_genres(snap, state))
        return div.taken, "popularity"
    collab, content = agree_first(collaborative(snap, state), content_based(snap, state))
    div = blend(snap, collab, content, total=total, exclude=state.heard)
    if len(div.taken) < total:
        # A small catalog or an unusual listener: top up (as far as the artist cap allows).
        popular(snap, total, exclude=state.heard, genres=preferred_genres(snap, state), diversifier=div)
    return div.taken, "hybrid"
