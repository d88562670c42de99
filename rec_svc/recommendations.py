"""Recommendations: Discover Weekly, radio, similar tracks and artists, /v1/recommendations.

The rules over the served Snapshot, rec's store and the catalog. Every method reads
`holder.current` once and uses that Snapshot to the end, which is what
lets a new version be swapped in under load without failing or mixing versions in a request.
Responses carry ids; the servicer turns them into catalog Track objects.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from spotify.catalog.v1 import catalog_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument, NotFound, Unavailable
from meshkit.metrics import CACHE_HITS, CACHE_MISSES, RECOMMENDATION_SECONDS
from meshkit.telemetry import tracer
from rec_svc import radio, recommend, tunables
from rec_svc.clients import Catalog
from rec_svc.holder import IndexHolder
from rec_svc.model.types import Play, TrackMeta
from rec_svc.settings import RecSettings
from rec_svc.snapshot import Snapshot
from rec_svc.store import RecStore, StoredMix

log = logging.getLogger(__name__)
TRACER = tracer(__name__)

MAX_SEEDS = 5
RECOMMENDATION_POOL = 250
SIMILAR_ARTISTS = 20


@contextmanager
def timed(algorithm: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        RECOMMENDATION_SECONDS.labels(algorithm).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class Seed:
    kind: str  # "track", "artist", "genre"
    key: str  # as the client wrote it (normalised): base62 id or genre name
    vector: np.ndarray | None
    exclude_row: int | None = None


@dataclass(frozen=True)
class SeedResult:
    seed: Seed
    initial_pool: int
    after_filtering: int


@dataclass(frozen=True)
class Recommendations:
    store: RecStore
    catalog: Catalog
    holder: IndexHolder
    settings: RecSettings

    def snapshot(self) -> Snapshot:
        snap = self.holder.current
        if snap is None:
            raise Unavailable("recommendations are not built yet: run `python -m rec_svc.batch build`")
        return snap

    # -- Discover Weekly ------------------------------------------------------------------------

    async def discover_weekly(self, user_id: uuid.UUID, now: datetime | None = None) -> tuple[StoredMix, str]:
        """The user's mix and where it came from ("store" or the algorithm that generated it).

        A stored mix is served while it is younger than a week, still recommendable, and
        contains nothing the user has played since it was made; otherwise a fresh one is
        generated from the live history and stored for the next call.
        """
        # The seed's spans: getRecommendations -> fetchListeningHistory -> mlInference.
        with TRACER.start_as_current_span("getRecommendations") as span:
            span.set_attribute("user.id", ids.encode(user_id))
            snap = self.snapshot()
            now = now or datetime.now(UTC)
            since = now - timedelta(days=snap.params.history_days)
            stored, heard = await self.store.stored_mix(user_id, since)
            if stored is not None and not heard and self._still_good(snap, stored, now):
                CACHE_HITS.labels("discover_weekly").inc()
                span.set_attribute("recommendations.source", "store")
                return stored, "store"
            CACHE_MISSES.labels("discover_weekly").inc()
            with TRACER.start_as_current_span("fetchListeningHistory") as history:
                plays = await self.store.history(user_id, since)
                history.set_attribute("history.count", len(plays))
            with TRACER.start_as_current_span("mlInference") as inference:
                mix, algorithm = self.generate_mix(snap, user_id, plays, now)
                inference.set_attribute("recommendations.count", len(mix.track_ids))
                inference.set_attribute("recommendations.algorithm", algorithm)
            span.set_attribute("recommendations.source", algorithm)
            await self.store.save_discover_weekly([mix])
            return mix, algorithm

    def generate_mix(
        self, snap: Snapshot, user_id: uuid.UUID, plays: list[Play], now: datetime
    ) -> tuple[StoredMix, str]:
        started = time.perf_counter()
        state = recommend.user_state(snap, user_id, plays, now)
        rows, algorithm = recommend.discover_weekly(snap, state)
        RECOMMENDATION_SECONDS.labels(f"discover_weekly_{algorithm}").observe(time.perf_counter() - started)
        return StoredMix(user_id, [snap.track_id(r) for r in rows], now, snap.version), algorithm

    def _still_good(self, snap: Snapshot, mix: StoredMix, now: datetime) -> bool:
        """Young enough, and every track still recommendable (not deleted from the catalog since)."""
        if now - mix.generated_at > timedelta(days=self.settings.dw_max_age_days):
            return False
        return all(snap.track_row(t) is not None for t in mix.track_ids)

    # -- radio and similar items ----------------------------------------------------------------

    async def radio(
        self, kind: str, value: str, page_size: int, page_token: str
    ) -> tuple[list[uuid.UUID], str]:
        if page_size < 0 or page_size > 50:
            raise InvalidArgument(f"page_size must be between 1 and 50, got {page_size}")
        page_size = page_size or 20
        _check_id(kind, value)
        snap = self.snapshot()
        seed = await self._seed(snap, kind, value, what="seed")
        key = f"{seed.kind}:{seed.key}"
        station = radio.decode(page_token, key) if page_token else radio.Station(seed=key)
        if seed.vector is None:
            raise NotFound(f"no tracks are known for {seed.kind} {seed.key} yet")
        anchor_row = None
        if station.anchor:
            anchor_row = snap.track_row(ids.decode(station.anchor, what="page_token anchor"))
        with timed("radio"):
            rows, after = radio.next_page(
                snap, station, seed.vector, page_size, seed_row=seed.exclude_row, anchor_row=anchor_row
            )
        return [snap.track_id(r) for r in rows], radio.encode(after)

    async def similar_tracks(self, track_id: str, limit: int) -> list[uuid.UUID]:
        if limit < 0 or limit > 100:
            raise InvalidArgument(f"limit must be between 1 and 100, got {limit}")
        _check_id("track", track_id)
        snap = self.snapshot()
        seed = await self._seed(snap, "track", track_id, what="id")
        if seed.vector is None or seed.exclude_row is None:  # a track seed always has both
            raise NotFound(f"track {track_id} not found")
        with timed("similar_tracks"):
            hits = snap.tracks.query(seed.vector, limit or 20, exclude={seed.exclude_row})[0]
        return [snap.track_id(r) for r, _ in hits]

    async def similar_artists(self, artist_id: str) -> list[uuid.UUID]:
        artist = ids.parse_id_or_uri(artist_id, "artist")
        snap = self.snapshot()
        index = snap.artists.index.get(artist)
        vector = snap.related_vector(index) if index is not None else None
        if vector is None or index is None:
            if not await self.catalog.artists([artist]):
                raise NotFound(f"artist {artist_id} not found")
            return []  # a real artist nobody has played and with no tracks indexed: no neighbours yet
        with timed("similar_artists"):
            matrix = snap.related_artist_matrix()
            sims = matrix @ vector
            if index < sims.shape[0]:
                sims[index] = -np.inf
            sims[~np.any(matrix, axis=1)] = -np.inf
            order = np.argsort(-sims, kind="stable")[:SIMILAR_ARTISTS]
        # Similarity 0 means nothing in common (no shared genre, listeners or sound): not related.
        return [snap.artists.items[i] for i in order.tolist() if np.isfinite(sims[i]) and sims[i] > 1e-6]

    # -- /v1/recommendations --------------------------------------------------------------------

    async def recommendations(
        self,
        seed_tracks: str,
        seed_artists: str,
        seed_genres: str,
        limit: int,
        filters: list[tunables.Tunable],
    ) -> tuple[list[SeedResult], list[uuid.UUID]]:
        lists = {
            "track": _split(seed_tracks),
            "artist": _split(seed_artists),
            "genre": [g.lower() for g in _split(seed_genres)],
        }
        total = sum(len(v) for v in lists.values())
        if total == 0:
            raise InvalidArgument("at least one of seed_tracks, seed_artists or seed_genres is required")
        if total > MAX_SEEDS:
            raise InvalidArgument(f"at most {MAX_SEEDS} seeds in total, got {total}")
        if limit < 0 or limit > 100:
            raise InvalidArgument(f"limit must be between 1 and 100, got {limit}")
        limit = limit or 20
        for kind, values in lists.items():
            for value in values:
                _check_id(kind, value)
        snap = self.snapshot()
        seeds = [
            await self._seed(snap, kind, value, what=f"seed_{kind}s", unknown=InvalidArgument)
            for kind, values in lists.items()
            for value in values
        ]
        with timed("recommendations"):
            return self._recommend(snap, seeds, filters, limit)

    def _recommend(
        self, snap: Snapshot, seeds: list[Seed], filters: list[tunables.Tunable], limit: int
    ) -> tuple[list[SeedResult], list[uuid.UUID]]:
        exclude = {s.exclude_row for s in seeds if s.exclude_row is not None}
        ranked: list[list[int]] = []
        results: list[SeedResult] = []
        for seed in seeds:
            hits = (
                snap.tracks.query(seed.vector, RECOMMENDATION_POOL, exclude=exclude)[0]
                if seed.vector is not None
                else []
            )
            rows = np.asarray([r for r, _ in hits], dtype=np.int64)
            sims = np.asarray([s for _, s in hits], dtype=np.float64)
            kept, scores = tunables.apply(filters, snap.features, snap.catalog_popularity, rows, sims)
            ranked.append(kept[np.argsort(-scores, kind="stable")].tolist())
            results.append(SeedResult(seed, len(hits), int(kept.size)))
        # Round-robin over the seeds so each contributes, at most 2 tracks per artist.
        div = recommend.Diversifier(snap, exclude)
        cursors = [0] * len(ranked)
        while len(div.taken) < limit and any(c < len(r) for c, r in zip(cursors, ranked, strict=True)):
            for i, rows_ in enumerate(ranked):
                while cursors[i] < len(rows_):
                    cursors[i] += 1
                    if div.offer(rows_[cursors[i] - 1]):
                        break
                if len(div.taken) >= limit:
                    break
        if len(div.taken) < limit:
            # Diversity first, but a small or narrow pool still fills the requested size.
            relaxed = recommend.Diversifier(snap, exclude | set(div.taken), max_per_artist=limit)
            for rows_ in ranked:
                for row in rows_:
                    if len(div.taken) + len(relaxed.taken) >= limit:
                        break
                    relaxed.offer(row)
            div.taken.extend(relaxed.taken)
        return results, [snap.track_id(r) for r in div.taken]

    # -- catalog objects in answers ---------------------------------------------------------------

    async def tracks(self, track_ids: list[uuid.UUID]) -> list[catalog_pb2.Track]:
        """Catalog track objects in the given order (tracks the catalog no longer has are left out).

        They are catalog_svc's own objects, carried through unread: rec never formats catalog data.
        """
        found = await self.catalog.tracks(track_ids)
        return [found[t] for t in track_ids if t in found]

    async def artists(self, artist_ids: list[uuid.UUID]) -> list[catalog_pb2.Artist]:
        found = await self.catalog.artists(artist_ids) if artist_ids else {}
        return [found[a] for a in artist_ids if a in found]

    async def genre_seeds(self) -> list[str]:
        """Seeds are the catalog's genres: catalog_svc owns them, so rec asks rather than keeps a copy."""
        return sorted(await self.catalog.genres())

    # -- seeds ----------------------------------------------------------------------------------

    async def _seed(
        self, snap: Snapshot, kind: str, value: str, *, what: str, unknown: type = NotFound
    ) -> Seed:
        """Resolve a seed to a query vector; unknown ids raise `unknown` (404; 400 for recommendations)."""
        if kind == "genre":
            name = value.strip().lower()
            index = snap.genres.index.get(name)
            if index is None:
                if name not in {g.lower() for g in await self.catalog.genres()}:
                    raise unknown(
                        f"{what}: unknown genre {value!r} (see /v1/recommendations/available-genre-seeds)"
                    )
                return Seed("genre", name, None)
            return Seed("genre", name, snap.genre_vector(index))
        if kind == "artist":
            artist = ids.parse_id_or_uri(value, "artist")
            index = snap.artists.index.get(artist)
            vector = snap.artist_vector(index) if index is not None else None
            if vector is None and not await self.catalog.artists([artist]):
                raise unknown(f"{what}: unknown artist {value}")
            return Seed("artist", ids.encode(artist), vector)
        if kind == "track":
            track = ids.parse_id_or_uri(value, "track")
            row = snap.track_row(track)
            if row is None:
                row = await self._add_from_catalog(snap, track)
                if row is None:
                    raise unknown(f"{what}: unknown track {value}")
            return Seed("track", ids.encode(track), snap.tracks.vectors([row])[0], row)
        raise InvalidArgument(f"unknown seed kind {kind!r}")

    async def _add_from_catalog(self, snap: Snapshot, track: uuid.UUID) -> int | None:
        """A track the catalog has but the index lacks (created since the build): add it live."""
        metas = await self.catalog.track_metas([track])
        if not metas:
            return None
        self.holder.add_tracks(metas, snap)
        return snap.track_row(track)

    async def add_tracks(self, metas: list[TrackMeta]) -> None:
        """Tracks announced on catalog.changes.v1: into the live index without a rebuild."""
        self.holder.add_tracks(metas)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_id(kind: str, value: str) -> None:
    """Refuse a malformed track or artist id (400) before asking for the models, which may not
    be built yet (503): bad input is the caller's to fix whatever the service's state."""
    if kind in ("track", "artist"):
        ids.parse_id_or_uri(value, kind)
