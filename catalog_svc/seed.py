"""Seed entry point: a catalog for a development mesh, written by catalog_svc's own code.

A dev-data package describes artists, albums and tracks as plain `Seed*` values and hands audio
it produced to the ingest pipeline; catalog_svc writes its own tables (the search and filter
triggers run as for any write), so nothing outside the service touches its schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from catalog_svc import audio_records, models
from catalog_svc.ingest.pipeline import IngestResult
from meshkit.migrate import normalize_url


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


def load_catalog(
    database_url: str, artists: Sequence[SeedArtist], albums: Sequence[SeedAlbum], tracks: Sequence[SeedTrack]
) -> bool:
    """Write the catalog unless it already has artists (one transaction); True when it wrote."""
    engine = create_engine(normalize_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            if session.scalar(select(func.count()).select_from(models.Artist)):
                return False
            session.add_all(
                models.Artist(
                    id=a.id,
                    name=a.name,
                    genres=list(a.genres),
                    verified=a.verified,
                    follower_count=a.follower_count,
                    popularity=a.popularity,
                    bio=a.bio,
                )
                for a in artists
            )
            session.flush()
            session.add_all(
                models.Album(
                    id=b.id,
                    artist_id=b.artist_id,
                    title=b.title,
                    release_date=b.release_date,
                    release_date_precision="day",
                    album_type=b.album_type,
                    total_tracks=b.total_tracks,
                    label=b.label,
                )
                for b in albums
            )
            session.flush()
            session.add_all(
                models.Track(
                    id=t.id,
                    album_id=t.album_id,
                    title=t.title,
                    duration_ms=t.duration_ms,
                    track_number=t.track_number,
                    disc_number=1,
                    explicit=t.explicit,
                    popularity=t.popularity,
                )
                for t in tracks
            )
            session.flush()
            session.add_all(
                models.TrackArtist(track_id=t.id, artist_id=t.artist_id, position=0) for t in tracks
            )
        return True
    finally:
        engine.dispose()


def tracks_without_audio(database_url: str, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Of `track_ids`, those with no audio files yet, each with its album artist's first genre."""
    engine = create_engine(normalize_url(database_url))
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(models.Track.id, models.Artist.genres)
                .join(models.Album, models.Track.album_id == models.Album.id)
                .join(models.Artist, models.Album.artist_id == models.Artist.id)
                .where(models.Track.id.in_(track_ids))
            ).all()
            done = set(
                session.scalars(
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
            with Session(engine) as session, session.begin():
                for statement, params in audio_records.statements(result, public_base_url):
                    session.execute(statement, params)  # type: ignore[call-overload]
            stored += 1
        return stored
    finally:
        engine.dispose()
