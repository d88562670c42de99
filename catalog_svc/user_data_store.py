"""SQL of the few places the catalog schema names a user: their data export and their erasure.

Export: artists they listened to (monthly listeners), their takedowns, ingest jobs and write
requests.

Erasure:

Monthly listeners keep counting the deleted user as one listener, under the deletion's pseudonym;
takedowns they made keep standing, under the pseudonym; their ingest jobs forget who asked; their
write idempotency keys go (they only guard retries).
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update

from catalog_svc.models import ArtistListener, ErasedUser, IngestJob, Takedown, WriteRequest
from meshkit import tombstones
from meshkit.db import SqlStore
from meshkit.user_export import ExportFile
from meshkit.user_export import rows as export_rows


class UserDataStore(SqlStore):
    async def export_user(self, user_id: uuid.UUID) -> list[ExportFile]:
        async with self.sessions() as session:
            listened = await session.execute(
                select(ArtistListener.artist_id, ArtistListener.last_streamed_at)
                .where(ArtistListener.user_id == user_id)
                .order_by(ArtistListener.last_streamed_at)
            )
            takedowns = await session.execute(
                select(
                    Takedown.entity_type,
                    Takedown.entity_id,
                    Takedown.reason,
                    Takedown.taken_down_at,
                )
                .where(Takedown.taken_down_by == user_id)
                .order_by(Takedown.taken_down_at)
            )
            jobs = await session.execute(
                select(
                    IngestJob.id,
                    IngestJob.track_id,
                    IngestJob.status,
                    IngestJob.error,
                    IngestJob.source_filename,
                    IngestJob.source_size,
                    IngestJob.created_at,
                    IngestJob.started_at,
                    IngestJob.finished_at,
                )
                .where(IngestJob.requested_by == user_id)
                .order_by(IngestJob.created_at)
            )
            writes = await session.execute(
                select(
                    WriteRequest.rpc, WriteRequest.request_id, WriteRequest.entity_id, WriteRequest.created_at
                )
                .where(WriteRequest.caller_id == user_id)
                .order_by(WriteRequest.created_at)
            )
            return [
                ExportFile(
                    "catalog/artists_listened_to.json",
                    "Artists you streamed, with your latest stream (their monthly listeners count you).",
                    export_rows(listened.mappings()),
                ),
                ExportFile(
                    "catalog/takedowns.json",
                    "Catalog items you took down.",
                    export_rows(takedowns.mappings()),
                ),
                ExportFile(
                    "catalog/ingest_jobs.json", "Audio files you uploaded.", export_rows(jobs.mappings())
                ),
                ExportFile(
                    "catalog/write_requests.json",
                    "Catalog changes you made, by request id (kept a day so retries change nothing).",
                    export_rows(writes.mappings()),
                ),
            ]

    async def erase_user(self, user_id: uuid.UUID, pseudonym: uuid.UUID) -> None:
        """In one transaction; idempotent (a repeat finds nothing left of the user)."""
        async with self.sessions() as session, session.begin():
            await tombstones.start_erasure(session, ErasedUser, user_id)
            await session.execute(
                update(ArtistListener).where(ArtistListener.user_id == user_id).values(user_id=pseudonym)
            )
            await session.execute(
                update(Takedown).where(Takedown.taken_down_by == user_id).values(taken_down_by=pseudonym)
            )
            await session.execute(
                update(IngestJob).where(IngestJob.requested_by == user_id).values(requested_by=None)
            )
            await session.execute(delete(WriteRequest).where(WriteRequest.caller_id == user_id))
