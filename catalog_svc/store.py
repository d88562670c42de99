"""SQL for the catalog schema; returns rows, knows nothing of protobuf or gRPC."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc.models import Album, Artist, Track, TrackArtist


@dataclass(frozen=True)
class TrackRecord:
    """A track with what its Spotify object embeds: the album and the credited artists, in order."""

    track: Track
    album: Album
    album_artists: list[Artist]
    artists: list[Artist]


class CatalogStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def tracks_by_id(self, track_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TrackRecord]:
        """The tracks that exist among `track_ids`, each with its album and artists (three queries)."""
        if not track_ids:
            return {}
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Track, Album)
                    .join(Album, Track.album_id == Album.id)
                    .where(Track.id.in_(track_ids))
                )
            ).all()
            credits = (
                await session.execute(
                    select(TrackArtist.track_id, Artist)
                    .join(Artist, TrackArtist.artist_id == Artist.id)
                    .where(TrackArtist.track_id.in_(track_ids))
                    .order_by(TrackArtist.track_id, TrackArtist.position)
                )
            ).all()
            album_artist_ids = {album.artist_id for _, album in rows}
            album_artists = {
                a.id: a
                for a in (await session.scalars(select(Artist).where(Artist.id.in_(album_artist_ids))))
            }
        by_track: dict[uuid.UUID, list[Artist]] = defaultdict(list)
        for track_id, artist in credits:
            by_track[track_id].append(artist)
        return {
            track.id: TrackRecord(
                track=track,
                album=album,
                album_artists=[album_artists[album.artist_id]],
                artists=by_track.get(track.id) or [album_artists[album.artist_id]],
            )
            for track, album in rows
        }

    async def artist(self, artist_id: uuid.UUID) -> Artist | None:
        async with self.sessions() as session:
            return await session.get(Artist, artist_id)

    async def genres(self) -> list[str]:
        """Every genre some artist carries, sorted."""
        async with self.sessions() as session:
            genre = func.unnest(Artist.genres).label("genre")
            result = await session.scalars(select(genre).distinct().order_by(genre))
            return list(result)
