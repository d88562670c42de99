"""A synthetic listening world with known structure, for the offline evaluation and tests.

Genres have audio-feature centroids; artists belong to one or two genres and have a
popularity drawn from a heavy-tailed distribution; listeners have a taste over 1-3 genres
and a handful of favourite artists, replay what they like, sometimes play chart hits outside
their taste, and skip what does not match it. Because the structure is known, a recommender
that learns it should clearly beat a popularity chart on next week's new listens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from catalog_svc.seed import SeedAlbum, SeedArtist, SeedTrack
from meshkit import ids
from rec_svc.model.types import FEATURE_NAMES, Interactions, ModelInputs, TrackMeta

GENRE_NAMES = (
    "rock", "electronic", "jazz", "hip-hop", "classical", "folk", "pop", "ambient",
    "metal", "soul", "reggae", "latin", "blues", "country", "punk", "k-pop",
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticConfig:
    n_genres: int = 12
    n_artists: int = 300
    n_tracks: int = 4000
    n_users: int = 2000
    n_playlists: int = 400
    playlist_length: int = 20
    days: int = 35
    plays_per_day: float = 4.0
    chart_share: float = 0.12  # plays of global hits regardless of taste
    favourite_share: float = 0.30  # plays of the user's favourite artists
    replay_share: float = 0.30  # replays of tracks the user already liked
    skip_in_taste: float = 0.08
    skip_off_taste: float = 0.65
    missing_features: float = 0.1
    seed: int = 42
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 5, tzinfo=UTC))


@dataclass(frozen=True)
class World:
    config: SyntheticConfig
    tracks: list[TrackMeta]
    track_genre: np.ndarray  # primary genre per track
    track_artist: np.ndarray  # main artist per track
    user_ids: list[uuid.UUID]
    interactions: Interactions
    playlists: list[list[uuid.UUID]]

    @property
    def end(self) -> datetime:
        return self.config.start + timedelta(days=self.config.days)

    def inputs(self, now: datetime, *, with_playlists: bool = True) -> ModelInputs:
        """Model inputs as of `now`: only the history before it."""
        past = self.interactions.window(float("-inf"), now.timestamp())
        return ModelInputs(
            now=now, tracks=self.tracks, interactions=past, playlists=self.playlists if with_playlists else ()
        )


def _uuid(kind: int, n: int, seed: int) -> uuid.UUID:
    return uuid.UUID(int=(seed & 0xFFFF) << 112 | kind << 96 | n)


def generate(config: SyntheticConfig) -> World:
    rng = np.random.default_rng(config.seed)
    g = config.n_genres
    genres = [GENRE_NAMES[i % len(GENRE_NAMES)] + ("" if i < len(GENRE_NAMES) else f"-{i}") for i in range(g)]
    centroids = rng.uniform(0.15, 0.85, (g, len(FEATURE_NAMES)))

    # Artists: a primary genre, sometimes a second one; heavy-tailed popularity.
    artist_genre = rng.integers(0, g, config.n_artists)
    second = np.where(rng.random(config.n_artists) < 0.2, rng.integers(0, g, config.n_artists), -1)
    artist_pop = rng.pareto(1.2, config.n_artists) + 0.1
    artist_offset = rng.normal(0.0, 0.06, (config.n_artists, len(FEATURE_NAMES)))
    artist_ids = [_uuid(1, a, config.seed) for a in range(config.n_artists)]

    # Tracks: every artist gets at least 3; the rest go to popular artists more often.
    share = np.sqrt(artist_pop) / np.sqrt(artist_pop).sum()
    extra = rng.multinomial(max(config.n_tracks - 3 * config.n_artists, 0), share)
    track_artist = np.repeat(np.arange(config.n_artists), 3 + extra)[: config.n_tracks]
    n_tracks = track_artist.size
    track_pop = artist_pop[track_artist] * rng.lognormal(0.0, 0.7, n_tracks)
    track_genre = artist_genre[track_artist]
    feats = (
        centroids[track_genre]
        + artist_offset[track_artist]
        + rng.normal(0, 0.07, (n_tracks, len(FEATURE_NAMES)))
    )
    feats = np.clip(feats, 0.0, 1.0)
    missing = rng.random(n_tracks) < config.missing_features
    pop_rank = np.argsort(np.argsort(-track_pop))
    catalog_pop = np.round(100 * (1 - pop_rank / max(n_tracks - 1, 1)) ** 2)
    tracks: list[TrackMeta] = []
    for t in range(n_tracks):
        a = int(track_artist[t])
        tg = (genres[artist_genre[a]],) + (
            (genres[second[a]],) if second[a] >= 0 and second[a] != artist_genre[a] else ()
        )
        features = None
        if not missing[t]:
            features = {name: float(feats[t, j]) for j, name in enumerate(FEATURE_NAMES)}
            features["tempo"] = 60.0 + 120.0 * features["tempo"]
            features["loudness"] = -30.0 + 28.0 * features["loudness"]
            features["mode"] = float(features["mode"] > 0.5)
        tracks.append(
            TrackMeta(
                track_id=_uuid(2, t, config.seed),
                artist_ids=(artist_ids[a],),
                genres=tg,
                features=features,
                popularity=float(catalog_pop[t]),
            )
        )

    by_genre = [np.flatnonzero(track_genre == k) for k in range(g)]
    by_genre = [pool if pool.size else np.arange(n_tracks) for pool in by_genre]
    by_artist = [np.flatnonzero(track_artist == a) for a in range(config.n_artists)]
    global_p = track_pop / track_pop.sum()

    def cumulative(pool: np.ndarray, power: float = 0.8) -> np.ndarray:
        w = np.cumsum(track_pop[pool] ** power)
        return w / w[-1]

    genre_cum = [cumulative(pool) for pool in by_genre]
    artist_cum = [cumulative(pool) for pool in by_artist]
    global_cum = np.cumsum(global_p)

    def pick(pool: np.ndarray, cum: np.ndarray) -> int:
        return int(pool[min(int(np.searchsorted(cum, rng.random())), pool.size - 1)])

    users = [_uuid(3, u, config.seed) for u in range(config.n_users)]
    rows: list[tuple[int, int, float, float]] = []
    start = config.start.timestamp()
    for u in range(config.n_users):
        k = int(rng.integers(1, 4))
        taste_genres = rng.choice(g, k, replace=False)
        taste_cum = np.cumsum(rng.dirichlet(np.ones(k) * 2.0))
        candidates = np.flatnonzero(np.isin(artist_genre, taste_genres))
        if candidates.size == 0:
            candidates = np.arange(config.n_artists)
        w = artist_pop[candidates] / artist_pop[candidates].sum()
        favourites = rng.choice(candidates, min(int(rng.integers(3, 9)), candidates.size), replace=False, p=w)
        activity = rng.lognormal(np.log(config.plays_per_day), 0.6)
        liked: list[int] = []
        for day in range(config.days):
            for _ in range(rng.poisson(activity)):
                r = rng.random()
                if r < config.chart_share:
                    t = min(int(np.searchsorted(global_cum, rng.random())), n_tracks - 1)
                elif r < config.chart_share + config.favourite_share:
                    a = int(favourites[rng.integers(favourites.size)])
                    t = pick(by_artist[a], artist_cum[a])
                elif r < config.chart_share + config.favourite_share + config.replay_share and liked:
                    t = liked[int(rng.integers(len(liked)))]
                else:
                    k_genre = int(taste_genres[min(int(np.searchsorted(taste_cum, rng.random())), k - 1)])
                    t = pick(by_genre[k_genre], genre_cum[k_genre])
                in_taste = track_genre[t] in taste_genres
                skipped = rng.random() < (config.skip_in_taste if in_taste else config.skip_off_taste)
                ts = start + (day + rng.random()) * 86_400.0
                if skipped:
                    rows.append((u, t, ts, -1.0))
                else:
                    rows.append((u, t, ts, 1.0))
                    liked.append(t)

    playlists: list[list[uuid.UUID]] = []
    for _ in range(config.n_playlists):
        genre_pool = by_genre[int(rng.integers(g))]
        size = min(config.playlist_length, genre_pool.size)
        w = track_pop[genre_pool] ** 0.6
        chosen = rng.choice(genre_pool, size, replace=False, p=w / w.sum())
        playlists.append([tracks[int(t)].track_id for t in chosen])

    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    interactions = Interactions(
        users=tuple(users),
        tracks=tuple(t.track_id for t in tracks),
        user_idx=arr[:, 0].astype(np.int32),
        track_idx=arr[:, 1].astype(np.int32),
        ts=arr[:, 2],
        weight=arr[:, 3].astype(np.float32),
    )
    return World(config, tracks, track_genre, track_artist, users, interactions, playlists)


TRACK_DURATION_MS = 180_000


def catalog(world: World) -> tuple[list[SeedArtist], list[SeedAlbum], list[SeedTrack]]:
    """The world's catalog as catalog_svc's seed values (`catalog_svc.seed.load_catalog`), so a
    real catalog_svc serves it: every artist with its genres and one album of its tracks, each
    track with the world's popularity and, unless the world left them out, its audio features."""
    genres: dict[uuid.UUID, dict[str, None]] = {}
    for meta in world.tracks:
        for artist in meta.artist_ids:
            genres.setdefault(artist, {}).update(dict.fromkeys(meta.genres))
    artists = [
        SeedArtist(
            id=artist,
            name=f"Artist {ids.encode(artist)[:6]}",
            genres=tuple(found),
            verified=False,
            follower_count=0,
            popularity=0,
            bio="",
        )
        for artist, found in genres.items()
    ]
    albums = {
        artist: SeedAlbum(
            id=uuid.uuid5(artist, "album"),
            artist_id=artist,
            title=f"Album {ids.encode(artist)[:6]}",
            release_date=world.config.start.date(),
            album_type="album",
            total_tracks=sum(artist in m.artist_ids[:1] for m in world.tracks),
            label="Synthetic",
        )
        for artist in genres
    }
    numbers: dict[uuid.UUID, int] = {}
    tracks = []
    for meta in world.tracks:
        artist = meta.artist_ids[0]
        numbers[artist] = numbers.get(artist, 0) + 1
        tracks.append(
            SeedTrack(
                id=meta.track_id,
                album_id=albums[artist].id,
                artist_id=artist,
                title=f"Track {ids.encode(meta.track_id)[:6]}",
                duration_ms=TRACK_DURATION_MS,
                track_number=numbers[artist],
                explicit=False,
                popularity=int(meta.popularity),
                audio_features=dict(meta.features) if meta.features is not None else None,
            )
        )
    return artists, list(albums.values()), tracks
