"""Demo data for the local mesh: a small deterministic catalog, the demo accounts and a playlist.

Ids are UUID5s of readable names, so the README can print a curl for a track that exists
on every fresh machine. Each service's rows are written through that service's own models.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import tempfile
import uuid
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import bcrypt
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from auth_svc import models as auth
from catalog_svc import audio_records
from catalog_svc import models as catalog
from catalog_svc.ingest import pipeline, synth
from catalog_svc.ingest.pipeline import IngestResult
from library_svc import models as library
from meshkit import ids

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("5f0c4e2a-9a53-4a7e-8d0b-2f1c6d7e9b10")


def demo_uuid(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


GENRES = ("rock", "electronic", "jazz", "hip-hop", "classical", "folk", "pop", "ambient")
ARTISTS = (
    # The first sixteen keep their places: their ids (uuid5 of the names) are in the README and tests.
    ("The Loud Valleys", "rock"),
    ("Granite Hum", "rock"),
    ("Neon Cascade", "electronic"),
    ("Pulse Garden", "electronic"),
    ("Blue Hour Quartet", "jazz"),
    ("Café Nocturne", "jazz"),
    ("MC Parallax", "hip-hop"),
    ("Concrete Verse", "hip-hop"),
    ("Orchestra of Glass", "classical"),
    ("Anaïs Strings", "classical"),
    ("Pinewood Ramblers", "folk"),
    ("Harbor Lights", "folk"),
    ("Sugar Comet", "pop"),
    ("Velvet Arcade", "pop"),
    ("Slow Tides", "ambient"),
    ("Drift Atlas", "ambient"),
    ("Rust Parade", "rock"),
    ("Static Bloom", "rock"),
    ("Iron Orchard", "rock"),
    ("Voltage Choir", "electronic"),
    ("Gridlight", "electronic"),
    ("Night Relay", "electronic"),
    ("Smoke & Brass", "jazz"),
    ("The Upright Hours", "jazz"),
    ("Lena Moreau Trio", "jazz"),
    ("Block Theory", "hip-hop"),
    ("Verse Engine", "hip-hop"),
    ("Lyric Republic", "hip-hop"),
    ("Camerata Nova", "classical"),
    ("Quartetto Lume", "classical"),
    ("Søren Ek Ensemble", "classical"),
    ("Juniper Road", "folk"),
    ("The Hollow Creek Band", "folk"),
    ("Willow & Wren", "folk"),
    ("Candy Satellite", "pop"),
    ("Neon Hearts Club", "pop"),
    ("Mira Sol", "pop"),
    ("Glacier Hymns", "ambient"),
    ("Low Orbit Drones", "ambient"),
    ("Tidewater Sleep", "ambient"),
)
WORDS = (
    "Midnight",
    "Echo",
    "River",
    "Static",
    "Golden",
    "Paper",
    "Signal",
    "Winter",
    "Ember",
    "Orbit",
    "Hollow",
    "Satellite",
    "Garden",
    "Mirror",
    "Velvet",
    "Thunder",
    "Lantern",
    "Canyon",
    "Crystal",
    "Atlas",
)
ALBUMS_PER_ARTIST = 3
TRACKS_PER_ALBUM = 5
# `make up` gives this many demo tracks real audio through the ingest pipeline (clips this long).
DEMO_AUDIO_TRACKS = 200
DEMO_AUDIO_SECONDS = 20.0

ACCOUNTS = (
    # email, password, display name, roles
    ("demo@example.com", "demo-password", "Demo Listener", ("user", "premium")),
    ("free@example.com", "free-password", "Free Listener", ("user",)),
    ("artist@example.com", "artist-password", "The Loud Valleys (artist)", ("user", "artist")),
    ("admin@example.com", "admin-password", "Admin", ("user", "admin")),
)

DEMO_TRACK_UUID = demo_uuid("track:The Loud Valleys:0:0")
DEMO_TRACK_ID = ids.encode(DEMO_TRACK_UUID)
DEMO_ARTIST_ID = ids.encode(demo_uuid("artist:The Loud Valleys"))
DEMO_USER_ID = ids.encode(demo_uuid("user:demo@example.com"))
DEMO_PLAYLIST_ID = ids.encode(demo_uuid("playlist:Demo Mix"))


def _title(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(words))


def _catalog_rows() -> tuple[list, list, list, list]:
    artists, albums, tracks, links = [], [], [], []
    for a_index, (name, genre) in enumerate(ARTISTS):
        artist_id = demo_uuid(f"artist:{name}")
        artists.append(
            catalog.Artist(
                id=artist_id,
                name=name,
                genres=[genre],
                verified=a_index % 2 == 0,
                follower_count=max(500, 1000 * (16 - a_index)),
                popularity=max(20, 80 - 3 * a_index),
                bio=f"{name} make {genre} music for the demo catalog.",
            )
        )
        for b in range(ALBUMS_PER_ARTIST):
            album_id = demo_uuid(f"album:{name}:{b}")
            albums.append(
                catalog.Album(
                    id=album_id,
                    artist_id=artist_id,
                    title=_title(a_index * 5 + b, 2),
                    release_date=dt.date(2015 + (a_index + b) % 10, 1 + b * 5, 1),
                    release_date_precision="day",
                    album_type="single" if b == 1 else "album",
                    total_tracks=TRACKS_PER_ALBUM,
                    label="Demo Records",
                )
            )
            for t in range(TRACKS_PER_ALBUM):
                track_id = demo_uuid(f"track:{name}:{b}:{t}")
                tracks.append(
                    catalog.Track(
                        id=track_id,
                        album_id=album_id,
                        title=_title(a_index * 11 + b * 5 + t, 1 + t % 3),
                        duration_ms=150_000 + 7_919 * ((a_index + b + t) % 13),
                        track_number=t + 1,
                        disc_number=1,
                        explicit=genre == "hip-hop" and t % 2 == 0,
                        popularity=max(5, 70 - a_index * 2 - t * 3),
                    )
                )
                links.append(catalog.TrackArtist(track_id=track_id, artist_id=artist_id, position=0))
    return artists, albums, tracks, links


def load_if_empty(database_url: str) -> bool:
    """Load the demo data unless the catalog already has artists; True when it loaded."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            if session.scalar(select(func.count()).select_from(catalog.Artist)):
                return False
            artists, albums, tracks, links = _catalog_rows()
            session.add_all(artists)
            session.flush()
            session.add_all(albums)
            session.flush()
            session.add_all(tracks)
            session.flush()
            session.add_all(links)
            _load_accounts(session)
            _load_playlist(session, [t.id for t in tracks[:10]])
        log.info("demo data loaded: %d artists, %d albums, %d tracks", len(artists), len(albums), len(tracks))
        return True
    finally:
        engine.dispose()


def _audio_job(job: tuple[uuid.UUID, str, int, Path, float]) -> IngestResult:
    """Synthesize a genre-flavoured clip and ingest it (runs in a worker process)."""
    track_id, genre, seed, storage_root, seconds = job
    with tempfile.TemporaryDirectory(prefix="demo-audio-") as tmp:
        source = Path(tmp) / "source.wav"
        synth.synthesize(genre, seed=seed, seconds=seconds).write_wav(source)
        return pipeline.ingest(source, track_id, storage_root)


def load_audio(
    database_url: str,
    storage_root: Path,
    count: int = DEMO_AUDIO_TRACKS,
    *,
    workers: int = 2,
    seconds: float = DEMO_AUDIO_SECONDS,
    public_base_url: str = "",
) -> int:
    """Give the first `count` demo tracks (every album's first track first) real audio, through the
    ingest pipeline; tracks that already have audio files are skipped. Returns how many were ingested."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(catalog.Track.id, catalog.Track.track_number, catalog.Artist.genres)
                .join(catalog.Album, catalog.Track.album_id == catalog.Album.id)
                .join(catalog.Artist, catalog.Album.artist_id == catalog.Artist.id)
                .where(catalog.Track.id.in_(_demo_track_ids()))
            ).all()
            done = set(session.scalars(select(catalog.AudioFile.track_id).distinct()))
        order = {track_id: i for i, track_id in enumerate(_demo_track_ids())}
        chosen = sorted(rows, key=lambda r: order[r.id])[:count]
        jobs = [
            (r.id, (r.genres or ["pop"])[0], order[r.id], storage_root, seconds)
            for r in chosen
            if r.id not in done
        ]
        if not jobs:
            return 0
        if workers <= 1:
            results = map(_audio_job, jobs)
            _store_audio(engine, results, public_base_url)
        else:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                _store_audio(engine, pool.map(_audio_job, jobs), public_base_url)
        log.info("demo audio ingested for %d tracks", len(jobs))
        return len(jobs)
    finally:
        engine.dispose()


def _store_audio(engine: Engine, results: Iterable[IngestResult], public_base_url: str) -> None:
    for result in results:
        with Session(engine) as session, session.begin():
            for statement, params in audio_records.statements(result, public_base_url):
                session.execute(statement, params)


def _demo_track_ids() -> list[uuid.UUID]:
    """Every demo track id, ordered so that a prefix covers every album before any album twice."""
    return [
        demo_uuid(f"track:{name}:{b}:{t}")
        for t in range(TRACKS_PER_ALBUM)
        for b in range(ALBUMS_PER_ARTIST)
        for name, _ in ARTISTS
    ]


def _load_accounts(session: Session) -> None:
    for email, password, display_name, roles in ACCOUNTS:
        user_id = demo_uuid(f"user:{email}")
        password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        session.add(
            auth.User(id=user_id, email=email, password_hash=password_hash, display_name=display_name)
        )
        session.flush()
        session.add_all(auth.UserRole(user_id=user_id, role=role) for role in roles)
        if "artist" in roles:
            session.add(auth.UserArtist(user_id=user_id, artist_id=demo_uuid("artist:The Loud Valleys")))


def _load_playlist(session: Session, track_ids: list[uuid.UUID]) -> None:
    owner = demo_uuid("user:demo@example.com")
    playlist_id = demo_uuid("playlist:Demo Mix")
    session.add(
        library.Playlist(
            id=playlist_id,
            owner_id=owner,
            name="Demo Mix",
            description="Ten tracks from the demo catalog",
            is_public=True,
            item_count=len(track_ids),
        )
    )
    session.flush()
    session.add_all(
        library.PlaylistItem(playlist_id=playlist_id, track_id=track_id, position=i, added_by=owner)
        for i, track_id in enumerate(track_ids)
    )
