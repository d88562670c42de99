"""SQL for the auth schema."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_svc.models import User, UserArtist, UserRole


@dataclass(frozen=True)
class Account:
    """A user with the roles and artist pages attached to it."""

    user: User
    roles: frozenset[str]
    artist_ids: list[uuid.UUID]

    @property
    def product(self) -> str:
        return "premium" if "premium" in self.roles else "free"


class AuthStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def account(self, user_id: uuid.UUID) -> Account | None:
        async with self.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            roles = await session.scalars(select(UserRole.role).where(UserRole.user_id == user_id))
            artists = await session.scalars(select(UserArtist.artist_id).where(UserArtist.user_id == user_id))
            return Account(user=user, roles=frozenset(roles), artist_ids=list(artists))
