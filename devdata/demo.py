"""Demo data for the local mesh: a small deterministic catalog, the demo accounts and a playlist.

Ids are UUID5s of readable names, so the README can print a curl for a track that exists
on every fresh machine. Each service writes its own rows through its seed entry point
(`catalog_svc.seed`, `auth_svc.seed`, `library_svc.seed`); this module only says what they are.
Demo audio is synthesized here (devdata.synth) and goes through catalog's ingest pipeline.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from auth_svc.seed import SeedAccount, load_accounts
from catalog_svc import seed as catalog_seed
from catalog_svc.ingest import pipeline
from catalog_svc.ingest.pipeline import IngestResult
from catalog_svc.seed import SeedAlbum, SeedArtist, SeedTrack
from devdata import synth
from library_svc.seed import SeedPlaylist, load_playlists
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


def catalog() -> tuple[list[SeedArtist], list[SeedAlbum], list[SeedTrack]]:
    """The demo catalog: every artist with its albums, every album with its tracks."""
    artists: list[SeedArtist] = []
    albums: list[SeedAlbum] = []
    tracks: list[SeedTrack] = []
    for a_index, (name, genre) in enumerate(ARTISTS):
        artist_id = demo_uuid(f"artist:{name}")
        artists.append(
            SeedArtist(
                id=artist_id,
                name=name,
                genres=(genre,),
                verified=a_index % 2 == 0,
                follower_count=max(500, 1000 * (16 - a_index)),
                popularity=max(20, 80 - 3 * a_index),
                bio=f"{name} make {genre} music for the demo catalog.",
            )
        )
        for b in range(ALBUMS_PER_ARTIST):
            album_id = demo_uuid(f"album:{name}:{b}")
            albums.append(
                SeedAlbum(
                    id=album_id,
                    artist_id=artist_id,
                    title=_title(a_index * 5 + b, 2),
                    release_date=dt.date(2015 + (a_index + b) % 10, 1 + b * 5, 1),
                    album_type="single" if b == 1 else "album",
                    total_tracks=TRACKS_PER_ALBUM,
                    label="Demo Records",
                )
            )
            for t in range(TRACKS_PER_ALBUM):
                tracks.append(
                    SeedTrack(
                        id=demo_uuid(f"track:{name}:{b}:{t}"),
                        album_id=album_id,
                        artist_id=artist_id,
                        title=_title(a_index * 11 + b * 5 + t, 1 + t % 3),
                        duration_ms=150_000 + 7_919 * ((a_index + b + t) % 13),
                        track_number=t + 1,
                        explicit=genre == "hip-hop" and t % 2 == 0,
                        popularity=max(5, 70 - a_index * 2 - t * 3),
                    )
                )
    return artists, albums, tracks


def accounts() -> list[SeedAccount]:
    return [
        SeedAccount(
            id=demo_uuid(f"user:{email}"),
            email=email,
            password=password,
            display_name=display_name,
            roles=roles,
            managed_artists=(demo_uuid("artist:The Loud Valleys"),) if "artist" in roles else (),
        )
        for email, password, display_name, roles in ACCOUNTS
    ]


def playlists(tracks: list[SeedTrack]) -> list[SeedPlaylist]:
    return [
        SeedPlaylist(
            id=demo_uuid("playlist:Demo Mix"),
            owner_id=demo_uuid("user:demo@example.com"),
            name="Demo Mix",
            description="Ten tracks from the demo catalog",
            public=True,
            track_ids=tuple(t.id for t in tracks[:10]),
        )
    ]


def load_if_empty(database_url: str) -> bool:
    """Load the demo catalog unless the catalog already has artists, and the demo accounts and
    playlist unless they exist; True when the catalog was loaded."""
    artists, albums, tracks = catalog()
    loaded = catalog_seed.load_catalog(database_url, artists, albums, tracks)
    load_accounts(database_url, accounts())
    load_playlists(database_url, playlists(tracks))
    if loaded:
        log.info("demo data loaded: %d artists, %d albums, %d tracks", len(artists), len(albums), len(tracks))
    return loaded


def _audio_job(job: tuple[uuid.UUID, str, int, Path, float]) -> IngestResult:
    """Synthesize a genre-flavoured clip and ingest it (runs in a worker process)."""
    track_id, genre, seed, storage_root, seconds = job
    with tempfile.TemporaryDirectory(prefix="demo-audio-") as tmp:
        source = Path(tmp) / "source.wav"
        synth.synthesize(genre, seed=seed, seconds=seconds).write_wav(source)
        return pipeline.ingest(source, track_id, storage_root)


def audio_order(count: int = DEMO_AUDIO_TRACKS) -> list[uuid.UUID]:
    """The first `count` demo tracks to get audio: every album's first track before any second."""
    return _demo_track_ids()[:count]


def load_audio(
    database_url: str,
    storage_root: Path,
    count: int = DEMO_AUDIO_TRACKS,
    *,
    workers: int = 2,
    seconds: float = DEMO_AUDIO_SECONDS,
    public_base_url: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Give the first `count` demo tracks (every album's first track first) real audio, through the
    ingest pipeline; tracks that already have audio files are skipped. Returns how many were ingested.

    `progress(done, total)` is called after each stored track (and once with 0 before the first).
    """
    chosen = audio_order(count)
    missing = catalog_seed.tracks_without_audio(database_url, chosen)
    order = {track_id: i for i, track_id in enumerate(_demo_track_ids())}
    jobs = [(t, missing[t], order[t], storage_root, seconds) for t in chosen if t in missing]
    if not jobs:
        return 0
    if progress is not None:
        progress(0, len(jobs))

    def reported(results: Iterator[IngestResult]) -> Iterator[IngestResult]:
        for done, result in enumerate(results, start=1):
            yield result
            if progress is not None:
                progress(done, len(jobs))

    if workers <= 1:
        stored = catalog_seed.store_audio(database_url, reported(map(_audio_job, jobs)), public_base_url)
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            stored = catalog_seed.store_audio(
                database_url, reported(pool.map(_audio_job, jobs)), public_base_url
            )
    log.info("demo audio ingested for %d tracks", stored)
    return stored


def _demo_track_ids() -> list[uuid.UUID]:
    """Every demo track id, ordered so that a prefix covers every album before any album twice."""
    return [
        demo_uuid(f"track:{name}:{b}:{t}")
        for t in range(TRACKS_PER_ALBUM)
        for b in range(ALBUMS_PER_ARTIST)
        for name, _ in ARTISTS
    ]
