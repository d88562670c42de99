"""SQL for reading the catalog schema; returns rows, knows nothing of protobuf or gRPC.

Every read is batched: a page of N tracks costs the same single statement as one track (rows,
credits and album credits together), never one query per item. Everything comes back as plain
rows (`TrackRow`, `AlbumRow`, `ArtistRow`, `ArtistRef`), not ORM objects: the read path only turns
them into responses, and ORM loading cost more than the statements themselves (12 ms against 4 ms
for a search page of 20 tracks).

The house style of every catalog store: SQLAlchemy Core over `models` (`text()` where the
statement is tuned by hand: these loaders, search, the stream-count projection), frozen row
dataclasses out, and no permission checks, protobuf or transactions beyond the one a method is.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog_svc.models import ALBUM_GROUPS, Album, AlbumArtist, Artist, Takedown, Track, TrackArtist
from meshkit.db import SqlStore

TOP_TRACKS = 10

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and how many items the whole list has."""

    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class ArtistRef:
    """An artist as a track or album embeds it (Spotify's simplified artist: id and name)."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class ArtistRow:
    """The artist columns its Spotify object shows (field names are column names, as AlbumRow's)."""

    id: uuid.UUID
    name: str
    genres: list[str]
    popularity: int
    follower_count: int
    images: list[dict[str, Any]] | None
    image_url: str | None


@dataclass(frozen=True, slots=True)
class AlbumRow:
    """The album columns its Spotify object shows (read as plain rows: the read path builds
    responses straight from them, with none of the ORM's identity map or change tracking).
    Field names are the column names, in select order: the loaders' SQL is made from them."""

    id: uuid.UUID
    title: str
    album_type: str
    total_tracks: int
    release_date: date | None
    release_date_precision: str
    images: list[dict[str, Any]] | None
    cover_url: str | None
    available_markets: list[str]
    genres: list[str]
    label: str | None
    popularity: int
    copyrights: list[dict[str, Any]] | None
    upc: str | None


@dataclass(frozen=True, slots=True)
class TrackRow:
    """The track columns its Spotify object shows (field names are column names, as AlbumRow's)."""

    id: uuid.UUID
    album_id: uuid.UUID
    title: str
    duration_ms: int
    track_number: int
    disc_number: int
    explicit: bool
    isrc: str | None
    preview_url: str | None
    popularity: int


@dataclass(frozen=True)
class TrackRecord:
    """A track with what its Spotify object embeds: the album and the credited artists, in order."""

    track: TrackRow
    album: AlbumRow
    album_artists: list[ArtistRef]
    artists: list[ArtistRef]
    # A takedown covers it (its own, its album's or its album's leading artist's).
    withdrawn: bool = False


@dataclass(frozen=True)
class AlbumRecord:
    """An album with its credited artists and, when asked for, the first page of its tracks."""

    album: AlbumRow
    artists: list[ArtistRef]
    tracks: list[TrackRecord]
    track_total: int
    # A takedown covers it (its own or its leading artist's).
    withdrawn: bool = False


@dataclass(frozen=True)
class GroupedAlbum:
    """An album as it appears in an artist's discography, with its Spotify album_group."""

    record: AlbumRecord
    group: str


@dataclass(frozen=True, slots=True)
class AudioFeaturesRow:
    """A track's analysed features (Spotify's audio-features names) and its duration."""

    track_id: uuid.UUID
    duration_ms: int
    features: dict[str, Any]


class CatalogStore(SqlStore):
    # ---- tracks ---------------------------------------------------------------------------

    async def tracks_by_id(
        self, track_ids: Sequence[uuid.UUID], *, include_withdrawn: bool = False
    ) -> dict[uuid.UUID, TrackRecord]:
        """The tracks that exist among `track_ids`, each with its album and artists (one statement);
        withdrawn ones only when asked for."""
        if not track_ids:
            return {}
        async with self.reads.connect() as conn:
            found = await load_tracks(conn, track_ids)
        if include_withdrawn:
            return found
        return {key: record for key, record in found.items() if not record.withdrawn}

    async def album_tracks(self, album_id: uuid.UUID, limit: int, offset: int) -> Page[TrackRecord] | None:
        """One page of an album's tracks in disc/track order; None when there is no such album."""
        async with self.sessions() as session:
            album = (await load_albums(session, [album_id])).get(album_id)
            if album is None or album.withdrawn:
                return None
            rows = (
                await session.execute(
                    text(ALBUM_TRACK_PAGE), {"album": album_id, "limit": limit, "offset": offset}
                )
            ).all()
            if rows:
                count = rows[0].total
            else:
                count = await session.scalar(
                    select(func.count()).where(Track.album_id == album_id, ~taken_down(Track.id))
                )
        records = [_track_record(row, album.album, album.artists) for row in rows]
        return Page(records, int(count or 0))

    async def artist_top_tracks(self, artist_id: uuid.UUID, limit: int = TOP_TRACKS) -> list[TrackRecord]:
        """The artist's most streamed tracks (credited anywhere), most streamed first."""
        async with self.sessions() as session:
            ordered = list(
                await session.scalars(
                    select(Track.id)
                    .join(TrackArtist, TrackArtist.track_id == Track.id)
                    .where(TrackArtist.artist_id == artist_id)
                    .order_by(Track.stream_count.desc(), Track.popularity.desc(), Track.id)
                    .limit(limit)
                )
            )
        found = await self.tracks_by_id(ordered)
        return [found[track_id] for track_id in ordered if track_id in found]

    async def audio_features(self, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, AudioFeaturesRow]:
        """The features of the tracks among `track_ids` that have them."""
        if not track_ids:
            return {}
        async with self.sessions() as session:
            rows = await session.execute(
                select(Track.id, Track.duration_ms, Track.audio_features)
                .join(Album, Album.id == Track.album_id)
                .where(
                    Track.id.in_(track_ids),
                    Track.audio_features.is_not(None),
                    ~taken_down(Track.id, Album.id, Album.artist_id),
                )
            )
            return {row.id: AudioFeaturesRow(row.id, row.duration_ms, row.audio_features) for row in rows}

    # ---- albums ---------------------------------------------------------------------------

    async def albums_by_id(
        self, album_ids: Sequence[uuid.UUID], *, tracks_limit: int = 0
    ) -> dict[uuid.UUID, AlbumRecord]:
        """The albums among `album_ids` that are not withdrawn, with their artists and, if
        `tracks_limit`, first tracks."""
        if not album_ids:
            return {}
        # Statements outside a transaction: under READ COMMITTED a transaction would not give the
        # albums and their tracks one snapshot either, and it costs two round trips more.
        async with self.reads.connect() as conn:
            found = await load_albums(conn, album_ids, tracks_limit=tracks_limit)
        return {key: record for key, record in found.items() if not record.withdrawn}

    async def artist_albums(
        self, artist_id: uuid.UUID, groups: Sequence[str], limit: int, offset: int
    ) -> Page[GroupedAlbum]:
        """One page of an artist's discography in `groups`, and its size.

        Credited albums (main artist or album_artists) are grouped by type; albums where the
        artist only appears on tracks are "appears_on". Ordered by group, then newest first.
        """
        credited_ids = union_all(
            select(Album.id.label("album_id")).where(Album.artist_id == artist_id),
            select(AlbumArtist.album_id).where(AlbumArtist.artist_id == artist_id),
        ).subquery()
        live = ~taken_down(Album.id, Album.artist_id)
        credited = select(
            Album.id.label("album_id"),
            case((Album.album_type == "ep", "single"), else_=Album.album_type).label("grp"),
        ).where(Album.id.in_(select(credited_ids.c.album_id)), live)
        appears = select(Album.id.label("album_id"), literal("appears_on").label("grp")).where(
            Album.id.in_(
                select(Track.album_id)
                .join(TrackArtist, TrackArtist.track_id == Track.id)
                .where(TrackArtist.artist_id == artist_id, ~taken_down(Track.id))
            ),
            Album.id.not_in(select(credited_ids.c.album_id)),
            live,
        )
        discography = union_all(credited, appears).subquery()
        group_order = func.array_position(literal(list(ALBUM_GROUPS)), discography.c.grp)
        total = func.count().over().label("total")
        query = (
            select(discography.c.album_id, discography.c.grp, total)
            .join(Album, Album.id == discography.c.album_id)
            .where(discography.c.grp.in_(list(groups)))
            .order_by(group_order, Album.release_date.desc().nulls_last(), Album.title, Album.id)
            .limit(limit)
            .offset(offset)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            if rows:
                count = rows[0].total
            else:
                count = await session.scalar(
                    select(func.count()).select_from(discography).where(discography.c.grp.in_(list(groups)))
                )
        records = await self.albums_by_id([row.album_id for row in rows])
        page = [GroupedAlbum(records[row.album_id], row.grp) for row in rows if row.album_id in records]
        return Page(page, int(count or 0))

    # ---- artists --------------------------------------------------------------------------

    async def artist(self, artist_id: uuid.UUID) -> ArtistRow | None:
        return (await self.artists_by_id([artist_id])).get(artist_id)

    async def artists_by_id(self, artist_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ArtistRow]:
        """The artists among `artist_ids` that are not withdrawn."""
        if not artist_ids:
            return {}
        async with self.reads.connect() as conn:
            return await load_artists(conn, artist_ids, include_withdrawn=False)

    async def genres(self) -> list[str]:
        """Every genre some artist carries, sorted."""
        genre = func.unnest(Artist.genres).label("genre")
        async with self.sessions() as session:
            return list(await session.scalars(select(genre).distinct().order_by(genre)))


def taken_down(*entity_ids: Any) -> ColumnElement[bool]:
    """Whether a takedown names any of `entity_ids` (a row's own id and its parents' ids)."""
    return select(Takedown.entity_id).where(Takedown.entity_id.in_(entity_ids)).exists()


def _taken_down_sql(*columns: str) -> str:
    return f"EXISTS (SELECT 1 FROM catalog.takedowns d WHERE d.entity_id IN ({', '.join(columns)}))"


def _columns(alias: str, row: type) -> str:
    return ", ".join(f"{alias}.{f.name}" for f in fields(row))


_TRACK_WIDTH, _ALBUM_WIDTH = len(fields(TrackRow)), len(fields(AlbumRow))
# Credited artists as one JSON array of [id, name] pairs each, in credit order: the loaders need
# one statement per page, not one query per relation and an ORM object per artist.
_TRACK_CREDITS = (
    "(SELECT json_agg(json_build_array(a.id, a.name) ORDER BY ta.position) FROM catalog.track_artists ta "
    "JOIN catalog.artists a ON a.id = ta.artist_id WHERE ta.track_id = t.id)"
)
# An album's album_artists credits, or its main artist alone when it has none.
_ALBUM_CREDITS = (
    "coalesce((SELECT json_agg(json_build_array(a.id, a.name) ORDER BY aa.position) "
    "FROM catalog.album_artists aa JOIN catalog.artists a ON a.id = aa.artist_id WHERE aa.album_id = al.id), "
    "(SELECT json_build_array(json_build_array(a.id, a.name)) FROM catalog.artists a "
    "WHERE a.id = al.artist_id))"
)
_TRACK = f"{_columns('t', TrackRow)}, {_TRACK_CREDITS} AS credits"
_ALBUM = f"{_columns('al', AlbumRow)}, {_ALBUM_CREDITS} AS album_credits"

TRACKS = (
    f"SELECT {_TRACK}, {_ALBUM}, {_taken_down_sql('t.id', 'al.id', 'al.artist_id')} AS withdrawn "
    "FROM catalog.tracks t JOIN catalog.albums al ON al.id = t.album_id WHERE t.id = ANY(:ids)"
)
ALBUMS = (
    f"SELECT {_ALBUM}, {_taken_down_sql('al.id', 'al.artist_id')} AS withdrawn "
    "FROM catalog.albums al WHERE al.id = ANY(:ids)"
)
# The first :limit tracks of each album (disc/track order) and each album's track count, both
# without the tracks taken down on their own (an album's own takedown covers all of them).
ALBUM_FIRST_TRACKS = (
    f"SELECT {_TRACK}, r.total FROM ("
    "SELECT id, row_number() OVER (PARTITION BY album_id ORDER BY disc_number, track_number, id) AS n, "
    "count(*) OVER (PARTITION BY album_id) AS total FROM catalog.tracks "
    f"WHERE album_id = ANY(:ids) AND NOT {_taken_down_sql('tracks.id')}"
    ") r JOIN catalog.tracks t ON t.id = r.id WHERE r.n <= :limit ORDER BY t.album_id, r.n"
)
ALBUM_TRACK_PAGE = (
    f"SELECT {_TRACK}, count(*) OVER () AS total FROM catalog.tracks t WHERE t.album_id = :album "
    f"AND NOT {_taken_down_sql('t.id')} "
    "ORDER BY t.disc_number, t.track_number, t.id LIMIT :limit OFFSET :offset"
)


def _refs(pairs: list[list[str]] | None) -> list[ArtistRef]:
    return [ArtistRef(uuid.UUID(key), name) for key, name in pairs or ()]


def _track_record(
    row: Sequence[Any], album: AlbumRow, album_artists: list[ArtistRef], withdrawn: bool = False
) -> TrackRecord:
    """A record from a row that starts with _TRACK; a track without credits shows the album's
    first artist."""
    credits = _refs(row[_TRACK_WIDTH])
    return TrackRecord(
        TrackRow(*row[:_TRACK_WIDTH]), album, album_artists, credits or album_artists[:1], withdrawn
    )


def row_columns(row: type, table: Any) -> list[Any]:
    """`table`'s columns named by `row`'s fields, in field order (the row dataclass is built from them)."""
    return [table.c[f.name] for f in fields(row)]


def select_row(row: type, table: Any) -> Select[Any]:
    """SELECT of `row`'s fields from `table` (see `row_columns`)."""
    return select(*row_columns(row, table))


async def load_artists(
    session: AsyncSession | AsyncConnection,
    artist_ids: Sequence[uuid.UUID],
    *,
    include_withdrawn: bool = True,
) -> dict[uuid.UUID, ArtistRow]:
    """Artists by id, in the caller's session or connection (writes read their result back with it)."""
    query = select_row(ArtistRow, Artist.__table__).where(Artist.id.in_(artist_ids))
    if not include_withdrawn:
        query = query.where(~taken_down(Artist.id))
    rows = await session.execute(query)
    return {row.id: ArtistRow(*row) for row in rows}


async def load_tracks(
    session: AsyncSession | AsyncConnection, track_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TrackRecord]:
    """Tracks with album and credits in one statement, in the caller's session (writes use it
    inside their transaction to build the change event's snapshot); withdrawn ones too, marked."""
    if not track_ids:
        return {}
    records = {}
    album_at = _TRACK_WIDTH + 1
    for row in await session.execute(text(TRACKS), {"ids": list(track_ids)}):
        album = AlbumRow(*row[album_at : album_at + _ALBUM_WIDTH])
        record = _track_record(row, album, _refs(row[album_at + _ALBUM_WIDTH]), row.withdrawn)
        records[record.track.id] = record
    return records


async def load_albums(
    session: AsyncSession | AsyncConnection, album_ids: Sequence[uuid.UUID], *, tracks_limit: int = 0
) -> dict[uuid.UUID, AlbumRecord]:
    """Albums with credits and, if `tracks_limit`, their first tracks: two statements whatever the
    number of albums (the first tracks of every album come from one windowed query)."""
    if not album_ids:
        return {}
    albums = {}
    withdrawn = set()
    for row in await session.execute(text(ALBUMS), {"ids": list(album_ids)}):
        album = AlbumRow(*row[:_ALBUM_WIDTH])
        albums[album.id] = (album, _refs(row[_ALBUM_WIDTH]))
        if row.withdrawn:
            withdrawn.add(album.id)
    tracks: dict[uuid.UUID, list[TrackRecord]] = defaultdict(list)
    totals: dict[uuid.UUID, int] = defaultdict(int)
    if tracks_limit and albums:
        rows = await session.execute(text(ALBUM_FIRST_TRACKS), {"ids": list(albums), "limit": tracks_limit})
        for row in rows:
            album, artists = albums[row.album_id]
            tracks[album.id].append(_track_record(row, album, artists))
            totals[album.id] = row.total
    return {
        album_id: AlbumRecord(album, artists, tracks[album_id], totals[album_id], album_id in withdrawn)
        for album_id, (album, artists) in albums.items()
    }
