"""SQL for the library schema."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library_svc.models import Playlist, PlaylistCollaborator, PlaylistItem


class LibraryStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def playlist(self, playlist_id: uuid.UUID) -> tuple[Playlist, list[uuid.UUID]] | None:
        """The playlist and its collaborators' user ids, or None."""
        async with self.sessions() as session:
            playlist = await session.get(Playlist, playlist_id)
            if playlist is None:
                return None
            collaborators = await session.scalars(
                select(PlaylistCollaborator.user_id).where(PlaylistCollaborator.playlist_id == playlist_id)
            )
            return playlist, list(collaborators)

    async def items(self, playlist_id: uuid.UUID, offset: int, limit: int) -> list[PlaylistItem]:
        """One page of items in playlist order."""
        async with self.sessions() as session:
            result = await session.scalars(
                select(PlaylistItem)
                .where(PlaylistItem.playlist_id == playlist_id)
                .order_by(PlaylistItem.position)
                .offset(offset)
                .limit(limit)
            )
            return list(result)
