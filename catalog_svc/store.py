"""SQL for reading the catalog schema; returns rows, knows nothing of protobuf or gRPC.

Every read is batched: a page of N tracks costs the same fixed number of queries as one
track (rows, credits, album credits), never one query per item.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc.models import Album, AlbumArtist, Artist, Track, TrackArtist

# Spotify's album groups in the order "Get Artist's Albums" lists them.
ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")
TOP_TRACKS = 10


@dataclass(frozen=True)
class TrackRecord:
    """A track with what its Spotify object embeds: the album and the credited artists, in order."""

    track: Track
    album: Album
    album_artists: list[Artist]
    artists: list[Artist]


@dataclass(frozen=True)
class AlbumRecord:
    """An album with its credited artists and, when asked for, the first page of its tracks."""

    album: Album
    artists: list[Artist]
    tracks: list[TrackRecord]
    track_total: int


@dataclass(frozen=True)
class GroupedAlbum:
    """An album as it appears in an artist's discography, with its Spotify album_group."""

    record: AlbumRecord
    group: str


def album_group(album_type: str) -> str:
    """The album_group of an album the artist is credited on (EPs are singles, as on Spotify)."""
    return {"album": "album", "compilation": "compilation"}.get(album_type, "single")


class CatalogStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    # ---- tracks ---------------------------------------------------------------------------

    async def tracks_by_id(self, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TrackRecord]:
        """The tracks that exist among `track_ids`, each with its album and artists (three queries)."""
        if not track_ids:
            return {}
        async with self.sessions() as session:
            return await load_tracks(session, track_ids)

    async def album_tracks(
        self, album_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Album, list[Artist], list[TrackRecord], int] | None:
        """One page of an album's tracks in disc/track order, and how many there are; None: no album."""
        async with self.sessions() as session:
            album = await session.get(Album, album_id)
            if album is None:
                return None
            total = func.count().over().label("total")
            rows = (
                await session.execute(
                    select(Track, total)
                    .where(Track.album_id == album_id)
                    .order_by(Track.disc_number, Track.track_number, Track.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            count = rows[0].total if rows else await _count(session, Track.album_id == album_id)
            album_artists = (await _album_artists(session, [album]))[album.id]
            credits = await _track_credits(session, [track.id for track, _ in rows])
        records = [
            TrackRecord(track, album, album_artists, credits.get(track.id) or album_artists[:1])
            for track, _ in rows
        ]
        return album, album_artists, records, count

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

    async def audio_features(
        self, track_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, dict[str, Any]]]:
        """(duration_ms, audio_features) of the tracks among `track_ids` that have features."""
        if not track_ids:
            return {}
        async with self.sessions() as session:
            rows = await session.execute(
                select(Track.id, Track.duration_ms, Track.audio_features).where(
                    Track.id.in_(track_ids), Track.audio_features.is_not(None)
                )
            )
            return {track_id: (duration, features) for track_id, duration, features in rows}

    # ---- albums ---------------------------------------------------------------------------

    async def albums_by_id(
        self, album_ids: Sequence[uuid.UUID], *, tracks_limit: int = 0
    ) -> dict[uuid.UUID, AlbumRecord]:
        """The albums among `album_ids` with their artists and, if `tracks_limit`, first tracks."""
        if not album_ids:
            return {}
        async with self.sessions() as session:
            return await load_albums(session, album_ids, tracks_limit=tracks_limit)

    async def artist_albums(
        self, artist_id: uuid.UUID, groups: Sequence[str], limit: int, offset: int
    ) -> tuple[list[GroupedAlbum], int]:
        """One page of an artist's discography in `groups`, and its size.

        Credited albums (main artist or album_artists) are grouped by type; albums where the
        artist only appears on tracks are "appears_on". Ordered by group, then newest first.
        """
        credited_ids = union_all(
            select(Album.id.label("album_id")).where(Album.artist_id == artist_id),
            select(AlbumArtist.album_id).where(AlbumArtist.artist_id == artist_id),
        ).subquery()
        credited = select(
            Album.id.label("album_id"),
            case((Album.album_type == "ep", "single"), else_=Album.album_type).label("grp"),
        ).where(Album.id.in_(select(credited_ids.c.album_id)))
        appears = select(Album.id.label("album_id"), literal("appears_on").label("grp")).where(
            Album.id.in_(
                select(Track.album_id)
                .join(TrackArtist, TrackArtist.track_id == Track.id)
                .where(TrackArtist.artist_id == artist_id)
            ),
            Album.id.not_in(select(credited_ids.c.album_id)),
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
        return page, int(count or 0)

    # ---- artists --------------------------------------------------------------------------

    async def artist(self, artist_id: uuid.UUID) -> Artist | None:
        async with self.sessions() as session:
            return await session.get(Artist, artist_id)

    async def artists_by_id(self, artist_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Artist]:
        if not artist_ids:
            return {}
        async with self.sessions() as session:
            return {a.id: a for a in await session.scalars(select(Artist).where(Artist.id.in_(artist_ids)))}

    async def existing_artist_ids(self, artist_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        wanted = list(artist_ids)
        if not wanted:
            return set()
        async with self.sessions() as session:
            return set(await session.scalars(select(Artist.id).where(Artist.id.in_(wanted))))

    async def genres(self) -> list[str]:
        """Every genre some artist carries, sorted."""
        async with self.sessions() as session:
            genre = func.unnest(Artist.genres).label("genre")
            result = await session.scalars(select(genre).distinct().order_by(genre))
            return list(result)


async def load_tracks(session: AsyncSession, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TrackRecord]:
    """Tracks with album and credits in three queries, in the caller's session (writes use it
    inside their transaction to build the change event's snapshot)."""
    if not track_ids:
        return {}
    rows = (
        await session.execute(
            select(Track, Album).join(Album, Track.album_id == Album.id).where(Track.id.in_(track_ids))
        )
    ).all()
    albums = {album.id: album for _, album in rows}
    album_artists = await _album_artists(session, albums.values())
    credits = await _track_credits(session, [track.id for track, _ in rows])
    return {
        track.id: TrackRecord(
            track=track,
            album=album,
            album_artists=album_artists[album.id],
            artists=credits.get(track.id) or album_artists[album.id][:1],
        )
        for track, album in rows
    }


async def load_albums(
    session: AsyncSession, album_ids: Sequence[uuid.UUID], *, tracks_limit: int = 0
) -> dict[uuid.UUID, AlbumRecord]:
    """Albums with credits and, if `tracks_limit`, their first tracks: a fixed number of queries
    whatever the number of albums (the first tracks of every album come from one windowed query)."""
    if not album_ids:
        return {}
    albums = list(await session.scalars(select(Album).where(Album.id.in_(album_ids))))
    artists = await _album_artists(session, albums)
    tracks: dict[uuid.UUID, list[Track]] = defaultdict(list)
    totals: dict[uuid.UUID, int] = defaultdict(int)
    credits: dict[uuid.UUID, list[Artist]] = {}
    if tracks_limit and albums:
        ranked = (
            select(
                Track.id.label("track_id"),
                func.row_number()
                .over(partition_by=Track.album_id, order_by=(Track.disc_number, Track.track_number, Track.id))
                .label("n"),
                func.count().over(partition_by=Track.album_id).label("total"),
            )
            .where(Track.album_id.in_([a.id for a in albums]))
            .subquery()
        )
        rows = (
            await session.execute(
                select(Track, ranked.c.total)
                .join(ranked, ranked.c.track_id == Track.id)
                .where(ranked.c.n <= tracks_limit)
                .order_by(Track.album_id, ranked.c.n)
            )
        ).all()
        for track, total in rows:
            tracks[track.album_id].append(track)
            totals[track.album_id] = total
        credits = await _track_credits(session, [track.id for track, _ in rows])
    records = {}
    for album in albums:
        album_artists = artists[album.id]
        records[album.id] = AlbumRecord(
            album=album,
            artists=album_artists,
            tracks=[
                TrackRecord(t, album, album_artists, credits.get(t.id) or album_artists[:1])
                for t in tracks[album.id]
            ],
            track_total=totals[album.id],
        )
    return records


async def _count(session: AsyncSession, condition: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(Track).where(condition)) or 0)


async def _track_credits(
    session: AsyncSession, track_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Artist]]:
    """Credited artists per track, in credit order (one query)."""
    if not track_ids:
        return {}
    rows = await session.execute(
        select(TrackArtist.track_id, Artist)
        .join(Artist, TrackArtist.artist_id == Artist.id)
        .where(TrackArtist.track_id.in_(track_ids))
        .order_by(TrackArtist.track_id, TrackArtist.position)
    )
    credits: dict[uuid.UUID, list[Artist]] = defaultdict(list)
    for track_id, artist in rows:
        credits[track_id].append(artist)
    return credits


async def _album_artists(session: AsyncSession, albums: Iterable[Album]) -> dict[uuid.UUID, list[Artist]]:
    """Credited artists per album in credit order; the main artist alone when album_artists has no rows.

    One query: the album_artists credits and every album's main artist together.
    """
    albums = list(albums)
    if not albums:
        return {}
    album_ids = [a.id for a in albums]
    credit_rows = (
        select(AlbumArtist.album_id, AlbumArtist.artist_id, AlbumArtist.position)
        .where(AlbumArtist.album_id.in_(album_ids))
        .union_all(select(Album.id, Album.artist_id, literal(-1)).where(Album.id.in_(album_ids)))
        .subquery()
    )
    rows = await session.execute(
        select(credit_rows.c.album_id, credit_rows.c.position, Artist)
        .join(Artist, Artist.id == credit_rows.c.artist_id)
        .order_by(credit_rows.c.album_id, credit_rows.c.position)
    )
    main: dict[uuid.UUID, Artist] = {}
    credited: dict[uuid.UUID, list[Artist]] = defaultdict(list)
    for album_id, position, artist in rows:
        if position < 0:
            main[album_id] = artist
        else:
            credited[album_id].append(artist)
    return {a.id: credited.get(a.id) or ([main[a.id]] if a.id in main else []) for a in albums}
