"""SQL for play state: one row per user in ``playback.play_states``, changed under its row lock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from meshkit.db import SqlStore
from playback_svc.models import PlayState


class PlayerStore(SqlStore):
    async def get(self, user_id: uuid.UUID) -> PlayState | None:
        async with self.sessions() as session:
            return await session.get(PlayState, user_id)

    @asynccontextmanager
    async def edit(self, user_id: uuid.UUID) -> AsyncIterator[PlayState]:
        """The user's row (created empty if missing), locked until the block ends; committed then.

        Two devices changing the state at once (pause on the phone, skip on the car) are applied
        one after the other, each to the state the other left.
        """
        async with self.sessions() as session, session.begin():
            await session.execute(insert(PlayState).values(user_id=user_id).on_conflict_do_nothing())
            state = (
                await session.execute(select(PlayState).where(PlayState.user_id == user_id).with_for_update())
            ).scalar_one()
            yield state
