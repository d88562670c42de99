"""Generate a large catalog (metadata only) into a database with COPY: 1,000,000 tracks by default.

    .venv/bin/python -m bench.catalog_gen --url postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        [--tracks 1000000] [--seed 7] [--create] [--replace]

--create creates the database and migrates the catalog schema; --replace empties a catalog that
already has rows (otherwise the script refuses to touch it). Names are made from a fixed
vocabulary (with accented words, so accent folding matters), popularity is skewed like real
listening (a few very popular tracks, a long tail), and ~10% of tracks credit a second artist.

Speed: secondary indexes of the catalog tables (GIN full-text and trigram included) are dropped
before COPY and rebuilt once after it, which is several times faster than maintaining them row
by row; their definitions are read from pg_indexes first, so they stay whatever the migrations
made them. Foreign keys are checked by COPY as usual.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg

from meshctl.datatier import create_database, libpq_url, with_database
from meshkit.migrate import normalize_url, upgrade

TABLES = ("track_artists", "tracks", "album_artists", "albums", "artists", "search_words")

GENRES = (
    "rock", "electronic", "jazz", "hip-hop", "classical", "folk", "pop", "ambient", "metal", "punk",
    "soul", "funk", "blues", "country", "reggae", "latin", "k-pop", "indie", "techno", "house",
    "trance", "drum and bass", "dubstep", "disco", "gospel", "opera", "soundtrack", "lo-fi", "grunge",
    "shoegaze", "bossa nova", "flamenco", "afrobeat", "r&b", "trap", "synthwave", "new wave", "ska",
    "bluegrass", "chanson",
)  # fmt: skip
WORDS = (
    "midnight", "echo", "river", "static", "golden", "paper", "signal", "winter", "ember", "orbit",
    "hollow", "satellite", "garden", "mirror", "velvet", "thunder", "lantern", "canyon", "crystal",
    "atlas", "summer", "shadow", "fire", "ocean", "heart", "love", "night", "dream", "light", "city",
    "rain", "blue", "red", "black", "white", "silver", "neon", "electric", "wild", "broken", "lost",
    "falling", "rising", "dancing", "running", "burning", "silent", "secret", "sweet", "bitter",
    "moon", "sun", "star", "sky", "storm", "wave", "road", "home", "ghost", "angel", "devil",
    "paradise", "highway", "memory", "forever", "tonight", "yesterday", "tomorrow", "morning",
    "evening", "window", "door", "fever", "sugar", "honey", "diamond", "stone", "glass", "wire",
    "machine", "engine", "radio", "television", "telephone", "letter", "story", "song", "melody",
    "rhythm", "harmony", "chorus", "verse", "bridge", "island", "desert", "forest", "mountain",
    "valley", "harbor", "station", "garden", "kingdom", "empire", "palace", "temple", "circus",
    "carnival", "parade", "revolution", "freedom", "gravity", "horizon", "eclipse", "aurora",
    "comet", "meteor", "galaxy", "cosmos", "nebula", "planet", "rocket", "pilot", "sailor",
    "soldier", "stranger", "lover", "dreamer", "wanderer", "hunter", "prophet", "poet", "painter",
    "dancer", "singer", "queen", "king", "prince", "princess", "tiger", "wolf", "raven", "dove",
    "phoenix", "dragon", "serpent", "butterfly", "rose", "lily", "violet", "jasmine", "ivy",
    "willow", "maple", "cedar", "pine", "oak", "thorn", "feather", "ashes", "dust", "smoke",
    "café", "señorita", "niño", "mañana", "über", "fräulein", "garçon", "déjà", "crème", "naïve",
    "résumé", "jalapeño", "piñata", "zoë", "anaïs", "björk", "søren", "ångström", "łódź", "façade",
)  # fmt: skip
FIRST_NAMES = (
    "anna", "ben", "clara", "david", "elena", "felix", "greta", "hugo", "iris", "jonas", "kira",
    "leon", "mila", "noah", "olga", "paul", "rosa", "sami", "tara", "ulla", "vera", "wim", "yara",
    "zoé", "chloé", "andré", "josé", "inès", "maël", "léa",
)  # fmt: skip
ALBUM_TYPES = (("album", 60), ("single", 30), ("ep", 5), ("compilation", 5))


@dataclass
class Sizes:
    tracks: int
    albums: int
    artists: int


def sizes_for(tracks: int) -> Sizes:
    """Ten tracks per album and two albums per artist on average, as in a real catalog's long tail."""
    albums = max(1, tracks // 10)
    return Sizes(tracks=tracks, albums=albums, artists=max(1, albums // 2))


class Names:
    """Deterministic names from the vocabulary, title-cased like real releases."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def title(self, low: int = 1, high: int = 4) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(low, high))
        return " ".join(w.capitalize() for w in words)

    def artist(self) -> str:
        kind = self.rng.random()
        if kind < 0.3:
            return f"The {self.title(1, 2)}"
        if kind < 0.55:
            first = self.rng.choice(FIRST_NAMES).capitalize()
            return f"{first} {self.rng.choice(WORDS).capitalize()}"
        return self.title(1, 3)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _popularity(rng: random.Random) -> int:
    """Skewed 0..100: most tracks are obscure, a few are hits."""
    return min(100, int(100 * rng.random() ** 3))


def _tsv(rows: Iterator[tuple], chunk_rows: int = 50_000) -> Iterator[bytes]:
    """COPY text format in chunks; generated values never contain tabs, newlines or backslashes."""
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
        buffer.write("\n")
        count += 1
        if count == chunk_rows:
            yield buffer.getvalue().encode()
            buffer = io.StringIO()
            count = 0
    if count:
        yield buffer.getvalue().encode()


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY catalog.{table} ({', '.join(columns)}) FROM STDIN") as copy:
        for chunk in _tsv(rows):
            copy.write(chunk)


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the catalog tables' non-constraint indexes."""
    return conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'catalog' AND i.tablename = ANY(%s)
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint c
              WHERE c.conname = i.indexname AND c.connamespace = 'catalog'::regnamespace
          )
        ORDER BY i.indexname
        """,
        (list(TABLES),),
    ).fetchall()


def generate(
    url: str, tracks: int, *, seed: int = 7, replace: bool = False, log: Callable[[str], None] = print
) -> Sizes:
    """Fill the (migrated, empty unless `replace`) catalog at `url` with a generated catalog."""
    rng = random.Random(seed)
    names = Names(rng)
    size = sizes_for(tracks)
    with psycopg.connect(libpq_url(normalize_url(url)), autocommit=False) as conn:
        row = conn.execute("SELECT count(*) FROM catalog.artists").fetchone()
        existing = row[0] if row is not None else 0
        if existing and not replace:
            raise SystemExit(f"the catalog already has {existing} artists; pass --replace to empty it first")
        if existing:
            conn.execute(f"TRUNCATE {', '.join('catalog.' + t for t in TABLES)} CASCADE")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX catalog."{name}"')
        # The triggers that keep tracks' filter copies and the search vocabulary would run once
        # per copied row; set-based refreshes after the COPY do the same work (0004, 0005).
        for table in TABLES:
            conn.execute(f"ALTER TABLE catalog.{table} DISABLE TRIGGER USER")

        started = time.perf_counter()
        artist_ids = [_uuid(rng) for _ in range(size.artists)]
        artist_genres = {a: rng.sample(GENRES, k=rng.choice((1, 1, 2, 3))) for a in artist_ids}
        _copy(
            conn,
            "artists",
            ("id", "name", "genres", "popularity", "follower_count", "monthly_listeners"),
            (
                (
                    a,
                    names.artist(),
                    "{" + ",".join(f'"{g}"' for g in artist_genres[a]) + "}",
                    _popularity(rng),
                    int(rng.lognormvariate(7, 2)),
                    int(rng.lognormvariate(8, 2)),
                )
                for a in artist_ids
            ),
        )
        log(f"artists: {size.artists:,} in {time.perf_counter() - started:.1f}s")

        album_types = [t for t, _ in ALBUM_TYPES]
        album_weights = [w for _, w in ALBUM_TYPES]
        albums = []  # (album_id, main artist)
        album_rows = []
        for _ in range(size.albums):
            album_id = _uuid(rng)
            artist = rng.choice(artist_ids)
            albums.append((album_id, artist))
            year = rng.randint(1960, 2025)
            album_rows.append(
                (
                    album_id,
                    artist,
                    names.title(1, 3),
                    f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "day",
                    rng.choices(album_types, album_weights)[0],
                    _popularity(rng),
                )
            )
        _copy(
            conn,
            "albums",
            (
                "id",
                "artist_id",
                "title",
                "release_date",
                "release_date_precision",
                "album_type",
                "popularity",
            ),
            iter(album_rows),
        )
        log(f"albums: {size.albums:,} in {time.perf_counter() - started:.1f}s")

        per_album = [0] * size.albums
        track_album = [rng.randrange(size.albums) for _ in range(size.tracks)]
        track_ids = [_uuid(rng) for _ in range(size.tracks)]
        featured: list[tuple[uuid.UUID, uuid.UUID]] = []

        def track_rows() -> Iterator[tuple]:
            for track_id, index in zip(track_ids, track_album, strict=True):
                per_album[index] += 1
                popularity = _popularity(rng)
                yield (
                    track_id,
                    albums[index][0],
                    names.title(1, 4),
                    rng.randint(90_000, 420_000),
                    per_album[index],
                    1,
                    "t" if rng.random() < 0.1 else "f",
                    popularity,
                    int(popularity**2 * rng.random() * 50),
                )

        _copy(
            conn,
            "tracks",
            (
                "id",
                "album_id",
                "title",
                "duration_ms",
                "track_number",
                "disc_number",
                "explicit",
                "popularity",
                "stream_count",
            ),
            track_rows(),
        )
        log(f"tracks: {size.tracks:,} in {time.perf_counter() - started:.1f}s")

        def credit_rows() -> Iterator[tuple]:
            for track_id, index in zip(track_ids, track_album, strict=True):
                main = albums[index][1]
                yield (track_id, main, 0)
                if rng.random() < 0.1:
                    guest = rng.choice(artist_ids)
                    if guest != main:
                        featured.append((track_id, guest))
                        yield (track_id, guest, 1)

        _copy(conn, "track_artists", ("track_id", "artist_id", "position"), credit_rows())
        conn.execute(
            "UPDATE catalog.albums al SET total_tracks = c.n "
            "FROM (SELECT album_id, count(*) AS n FROM catalog.tracks GROUP BY album_id) c "
            "WHERE al.id = c.album_id"
        )
        log(f"credits: {size.tracks + len(featured):,} in {time.perf_counter() - started:.1f}s")
        step = time.perf_counter()
        # Statistics first: in a new database the planner would take these tables for empty and
        # check every track against the whole id array (hours for a million tracks, not minutes).
        for table in TABLES:
            conn.execute(f"ANALYZE catalog.{table}")
        conn.execute("SELECT catalog.refresh_track_filters(ARRAY(SELECT id FROM catalog.tracks))")
        conn.execute("SELECT catalog.refresh_search_words()")
        for table in TABLES:
            conn.execute(f"ALTER TABLE catalog.{table} ENABLE TRIGGER USER")
        # That UPDATE left a dead copy of every track: rewrite the table (no secondary indexes
        # yet, so this is cheap) or every benchmark reads twice the pages a real catalog has.
        # VACUUM needs its own transaction: a failure from here on leaves rows without
        # secondary indexes (run again with --replace).
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM FULL catalog.tracks")
        conn.autocommit = False
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        log(f"track filter copies in {time.perf_counter() - step:.1f}s")

        for name, definition in indexes:
            step = time.perf_counter()
            conn.execute(definition)
            log(f"index {name} in {time.perf_counter() - step:.1f}s")
        conn.commit()
        conn.autocommit = True
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE catalog.{table}")
        log(f"done in {time.perf_counter() - started:.1f}s (indexes rebuilt, tables analysed)")
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_gen", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="database URL (postgresql+psycopg://...)")
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--create", action="store_true", help="create the database and migrate the catalog schema"
    )
    parser.add_argument("--replace", action="store_true", help="empty a non-empty catalog first")
    args = parser.parse_args(argv)
    url = normalize_url(args.url)
    if args.create:
        database = url.rpartition("/")[2].split("?")[0]
        create_database(with_database(url, "postgres"), database)
        upgrade("catalog_svc", url)
    started = time.perf_counter()
    size = generate(url, args.tracks, seed=args.seed, replace=args.replace)
    elapsed = time.perf_counter() - started
    print(
        f"generated {size.artists:,} artists, {size.albums:,} albums, {size.tracks:,} tracks "
        f"in {elapsed:.1f}s ({size.tracks / elapsed:,.0f} tracks/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
