"""SQL of what the playback schema holds about one user: its data export and its erasure.

Export: every row of the user's, as stored.

Erasure:

Personal state goes: play state and queue, listening history, offline devices and their
licenses. Counted streams and their royalty rows stay, counts and money intact, with the user's
id (and the stream keys built on it) replaced by the deletion's pseudonym. Published outbox rows
that still carry the user's id go too (unpublished ones go out and are purged like the rest).
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, text, update

from meshkit import ids, tombstones
from meshkit.db import SqlStore
from meshkit.user_export import ExportFile, TableSpec, table_files
from playback_svc.models import (
    CountedStream,
    ErasedUser,
    ListeningHistory,
    OfflineDevice,
    OfflineLicense,
    OutboxEvent,
    PlayState,
    RoyaltyAttribution,
)

# (file, what it holds, table, order) of the export: every column of the user's rows.
_EXPORTED: tuple[TableSpec, ...] = (
    ("playback/player.json", "Your player: what plays, where, the queue.", PlayState, PlayState.user_id),
    (
        "playback/listening_history.json",
        "Every play you reported, counted or not.",
        ListeningHistory,
        ListeningHistory.played_at,
    ),
    (
        "playback/counted_streams.json",
        "Your plays that counted as streams (30 s or more) for royalties.",
        CountedStream,
        CountedStream.counted_at,
    ),
    (
        "playback/royalty_attributions.json",
        "How each of your counted streams was split between the track's artists.",
        RoyaltyAttribution,
        RoyaltyAttribution.counted_at,
    ),
    (
        "playback/offline_devices.json",
        "Devices you registered for offline listening, with their public keys.",
        OfflineDevice,
        OfflineDevice.registered_at,
    ),
    (
        "playback/offline_licenses.json",
        "Your offline downloads' licenses.",
        OfflineLicense,
        OfflineLicense.issued_at,
    ),
)


class UserDataStore(SqlStore):
    async def export_user(self, user_id: uuid.UUID) -> list[ExportFile]:
        async with self.sessions() as session:
            return await table_files(session, user_id, _EXPORTED)

    async def erase_user(self, user_id: uuid.UUID, pseudonym: uuid.UUID) -> None:
        """In one transaction; idempotent (a repeat finds nothing left of the user)."""
        user, alias = ids.encode(user_id), ids.encode(pseudonym)
        async with self.sessions() as session, session.begin():
            # First the slow part, a scan of the outbox's payloads, which no counter batch touches:
            # the stripe lock below holds batches back only while the user's own rows change.
            await session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.published_at.is_not(None),
                    text("position(convert_to(:needle, 'UTF8') in payload) > 0").bindparams(needle=user),
                )
            )
            await tombstones.start_erasure(session, ErasedUser, user_id)
            await session.execute(delete(PlayState).where(PlayState.user_id == user_id))
            await session.execute(delete(ListeningHistory).where(ListeningHistory.user_id == user_id))
            await session.execute(delete(OfflineLicense).where(OfflineLicense.user_id == user_id))
            await session.execute(delete(OfflineDevice).where(OfflineDevice.user_id == user_id))
            await session.execute(
                update(RoyaltyAttribution)
                .where(RoyaltyAttribution.user_id == user_id)
                .values(user_id=pseudonym)
            )
            # A counted stream's key is "<user>:<client key>": the user's part goes too.
            await session.execute(
                update(CountedStream)
                .where(CountedStream.user_id == user_id)
                .values(
                    user_id=pseudonym,
                    idempotency_key=func.replace(CountedStream.idempotency_key, f"{user}:", f"{alias}:"),
                )
            )
