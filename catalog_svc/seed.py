"""Seed entry point: a catalog for a development mesh, written by catalog_svc's own code.

A dev-data package describes artists, albums and tracks as plain `Seed*` values and hands audio
it produced to the ingest pipeline; catalog_svc writes its own tables (the search and filter
triggers run as for any write), so nothing outside the service touches its schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import create_engine, func, insert, select

from catalog_svc import audio_store, models
from catalog_svc.ingest.pipeline import IngestResult
from meshkit.db import normalize_url


@dataclass(frozen=True)
class SeedArtist:
    id: uuid.UUID
    name: str
    genres: tuple[str, ...]
    verified: bool
    follower_count: int
    popularity: int
    bio: str


@dataclass(frozen=True)
class SeedAlbum:
    id: uuid.UUID
    artist_id: uuid.UUID
    title: str
    release_date: dt.date
    album_type: str
    total_tracks: int
    label: str


@dataclass(frozen=True)
class SeedTrack:
    id: uuid.UUID
    album_id: uuid.UUID
    artist_id: uuid.UUID
    title: str
    duration_ms: int
    track_number: int
    explicit: bool
    popularity: int
    # Audio features of a catalog imported with its analysis (Spotify's names); None until ingest.
    audio_features: Mapping[str, float] | None = None


def load_catalog(
    database_url: str,
    artists: Sequence[SeedArtist],
    albums: Sequence[SeedAlbum],
    tracks: Sequence[SeedTrack],
    *,
    only_if_empty: bool = True,
) -> bool:
    """Write the catalog in one transaction; True when it wrote.

    With `only_if_empty` (demo data) nothing is written when the catalog already has artists;
    without it the rows are added to what is there (a benchmark's own rows on a loaded mesh).
    """
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.begin() as conn:
            if only_if_empty and conn.scalar(select(func.count()).select_from(models.Artist)):
                return False
            if artists:  # new tracks may join artists and albums already there
                conn.execute(
                    insert(models.Artist), [{**asdict(a), "genres": list(a.genres)} for a in artists]
                )
            if albums:
                conn.execute(
                    insert(models.Album), [{**asdict(b), "release_date_precision": "day"} for b in albums]
                )
            # Two statements: a row either has features or leaves the column out (SQL NULL, not JSON null).
            for group in (
                [t for t in tracks if t.audio_features is None],
                [t for t in tracks if t.audio_features is not None],
            ):
                if group:
                    conn.execute(insert(models.Track), [_track_row(t) for t in group])
            if tracks:
                conn.execute(
                    insert(models.TrackArtist),
                    [{"track_id": t.id, "artist_id": t.artist_id, "position": 0} for t in tracks],
                )
        return True
    finally:
        engine.dispose()


def _track_row(track: SeedTrack) -> dict[str, object]:
    """The track's columns (its artist is a credit, in track_artists)."""
    row = {key: value for key, value in asdict(track).items() if key not in ("artist_id", "audio_features")}
    if track.audio_features is not None:
        row["audio_features"] = dict(track.audio_features)
    return {**row, "disc_number": 1}


def tracks_without_audio(database_url: str, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Of `track_ids`, those with no audio files yet, each with its album artist's first genre."""
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(models.Track.id, models.Artist.genres)
                .join(models.Album, models.Track.album_id == models.Album.id)
                .join(models.Artist, models.Album.artist_id == models.Artist.id)
                .where(models.Track.id.in_(track_ids))
            ).all()
            done = set(
                conn.scalars(
                    select(models.AudioFile.track_id)
                    .where(models.AudioFile.track_id.in_(track_ids))
                    .distinct()
                )
            )
        return {row.id: (row.genres or ["pop"])[0] for row in rows if row.id not in done}
    finally:
        engine.dispose()


def store_audio(database_url: str, results: Iterable[IngestResult], public_base_url: str = "") -> int:
    """Store each ingest result as IngestTrackAudio does (one transaction each); returns how many."""
    engine = create_engine(normalize_url(database_url))
    stored = 0
    try:
        for result in results:
            with engine.begin() as conn:
                for statement, params in audio_store.statements(result, public_base_url):
                    conn.execute(statement, params)
            stored += 1
        return stored
    finally:
        engine.dispose()
