"""SQL for the rec schema (and nothing else: rec never reads another service's tables)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit import tombstones
from meshkit.db import SqlStore
from meshkit.user_export import ExportFile, TableSpec, table_files
from rec_svc.model.types import Play, TrackMeta
from rec_svc.models import (
    Base,
    DiscoverWeekly,
    ErasedUser,
    EventApplied,
    IndexVersion,
    Listen,
    Skip,
    TrackInfo,
)


@dataclass(frozen=True)
class StoredMix:
    user_id: uuid.UUID
    track_ids: list[uuid.UUID]
    generated_at: datetime
    model_version: str


@dataclass(frozen=True)
class VersionRow:
    version: str
    path: str
    built_at: datetime
    active: bool


class RecStore(SqlStore):
    # -- retention ----------------------------------------------------------------------------------

    async def export_user(self, user_id: uuid.UUID) -> list[ExportFile]:
        """The user's listens, skips and stored mix, as data export files."""
        exported: tuple[TableSpec, ...] = (
            (
                "rec/listens.json",
                "Your counted streams as recommendations learn from them.",
                Listen,
                Listen.counted_at,
            ),
            (
                "rec/skips.json",
                "Tracks you skipped, which recommendations count against.",
                Skip,
                Skip.skipped_at,
            ),
            (
                "rec/discover_weekly.json",
                "Your stored Discover Weekly mix.",
                DiscoverWeekly,
                DiscoverWeekly.generated_at,
            ),
        )
        async with self.sessions() as session:
            return await table_files(session, user_id, exported)

    async def erase_user(self, user_id: uuid.UUID) -> None:
        """A deleted user's listens, skips and stored mix, in one transaction (idempotent). Their
        embedding is computed from these, so the next build has none; until then their vector
        may still stand among others' neighbours in the served user index."""
        async with self.sessions.begin() as session:
            await tombstones.start_erasure(session, ErasedUser, user_id)
            await session.execute(delete(Listen).where(Listen.user_id == user_id))
            await session.execute(delete(Skip).where(Skip.user_id == user_id))
            await session.execute(delete(DiscoverWeekly).where(DiscoverWeekly.user_id == user_id))

    async def purge_applied_events(self, *, days: int) -> int:
        """Forget which events were applied more than `days` ago: older than the topics'
        retention, no broker can deliver them again. Returns how many ids went."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                delete(EventApplied).where(
                    EventApplied.applied_at < func.now() - func.make_interval(0, 0, 0, days)
                )
            )
        return int(getattr(result, "rowcount", 0))

    # -- listening history ------------------------------------------------------------------------

    async def add_listens(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert counted streams; a stream id seen before, or an erased user's stream, inserts
        nothing. Returns rows inserted.

        Tracks first seen here are recorded in rec.tracks too, so the next build knows them
        even if no catalog event announced them.
        """
        if not rows:
            return 0
        async with self.sessions.begin() as session:
            rows = await _of_living_users(session, rows)
            if not rows:
                return 0
            result = await session.execute(
                insert(Listen).values(list(rows)).on_conflict_do_nothing().returning(Listen.stream_id)
            )
            inserted = len(result.all())
            seen = {r["track_id"]: r.get("artist_ids", []) for r in rows}
            await session.execute(
                insert(TrackInfo)
                .values([{"track_id": t, "artist_ids": a} for t, a in seen.items()])
                .on_conflict_do_nothing()
            )
        return inserted

    async def add_skips(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert skips; a (user, idempotency key) seen before, or an erased user's skip, inserts
        nothing. Returns rows inserted.

        Unlike a counted stream, a skip's track was never checked against the catalog (a client
        may name any well-formed id), so it is not added to rec.tracks: the next build still asks
        the catalog about every track the history mentions, and drops the ones it does not know.
        """
        if not rows:
            return 0
        async with self.sessions.begin() as session:
            rows = await _of_living_users(session, rows)
            if not rows:
                return 0
            result = await session.execute(
                insert(Skip).values(list(rows)).on_conflict_do_nothing().returning(Skip.user_id)
            )
            return len(result.all())

    async def history(self, user_id: uuid.UUID, since: datetime) -> list[Play]:
        async with self.sessions() as session:
            return await self._history(session, user_id, since)

    async def stored_mix(self, user_id: uuid.UUID, heard_since: datetime) -> tuple[StoredMix | None, bool]:
        """The stored mix, and whether the user has streamed any of its tracks since `heard_since`.

        One round trip: this is the whole database work of serving a mix from the store.
        """
        heard = (
            select(Listen.stream_id)
            .where(
                Listen.user_id == DiscoverWeekly.user_id,
                Listen.counted_at >= heard_since,
                Listen.track_id == func.any(DiscoverWeekly.track_ids),
            )
            .exists()
        )
        query = select(
            DiscoverWeekly.track_ids, DiscoverWeekly.generated_at, DiscoverWeekly.model_version, heard
        ).where(DiscoverWeekly.user_id == user_id)
        async with self.reads.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None, False
        return StoredMix(user_id, list(row[0]), row[1], row[2]), bool(row[3])

    @staticmethod
    async def _history(session: AsyncSession, user_id: uuid.UUID, since: datetime) -> list[Play]:
        """Counted streams (positive weight) and skips (negative), oldest first."""
        plays = union_all(
            select(Listen.track_id, Listen.counted_at.label("at"), Listen.weight).where(
                Listen.user_id == user_id, Listen.counted_at >= since
            ),
            select(Skip.track_id, Skip.skipped_at.label("at"), Skip.weight).where(
                Skip.user_id == user_id, Skip.skipped_at >= since
            ),
        ).subquery()
        result = await session.execute(
            select(plays.c.track_id, plays.c.at, plays.c.weight).order_by(plays.c.at, plays.c.track_id)
        )
        return [Play(row.track_id, row.at, float(row.weight)) for row in result]

    async def interactions(
        self, since: datetime
    ) -> AsyncIterator[tuple[uuid.UUID, uuid.UUID, datetime, float]]:
        """Every listen and skip since `since`, streamed (the batch build reads millions of rows)."""
        query = union_all(
            select(Listen.user_id, Listen.track_id, Listen.counted_at, Listen.weight).where(
                Listen.counted_at >= since
            ),
            select(Skip.user_id, Skip.track_id, Skip.skipped_at, Skip.weight).where(Skip.skipped_at >= since),
        )
        async with self.sessions() as session:
            result = await session.stream(query.execution_options(yield_per=10_000))
            async for user_id, track_id, at, weight in result:
                yield user_id, track_id, at, float(weight)

    # -- catalog copy ---------------------------------------------------------------------------

    async def track_metas(self) -> list[TrackMeta]:
        """rec's copy of the catalog's facts about the tracks not deleted, by id."""
        async with self.sessions() as session:
            query = select(TrackInfo).where(TrackInfo.deleted.is_(False)).order_by(TrackInfo.track_id)
            return [_meta(row) for row in await session.scalars(query)]

    async def clock(self) -> datetime:
        """The database's clock (rows' `updated_at` are stamped with it)."""
        async with self.sessions() as session:
            now = await session.scalar(select(func.now()))
        assert now is not None
        return now

    async def tracks_changed_since(
        self, since: datetime
    ) -> tuple[list[tuple[TrackMeta, bool, datetime]], datetime]:
        """The rows of rec.tracks stamped at or after `since`, each with its stamp, and the database's
        clock at the read (its transaction's start, so no later-stamped row is missed by it)."""
        async with self.sessions() as session:
            now = await session.scalar(select(func.now()))
            query = select(TrackInfo).where(TrackInfo.updated_at >= since).order_by(TrackInfo.updated_at)
            rows = [(_meta(row), row.deleted, row.updated_at) for row in await session.scalars(query)]
        assert now is not None
        return rows, now

    async def upsert_tracks(self, metas: Sequence[TrackMeta], event: tuple[str, str] | None = None) -> bool:
        """Write catalog facts; with `event` (id, topic), only if that event was not applied before.

        Returns False when the event had already been applied (nothing written).
        """
        async with self.sessions.begin() as session:
            if event is not None and not await self._claim(session, *event):
                return False
            if metas:
                # Only rows whose facts changed are rewritten (and stamped): every replica re-reads
                # the stamped rows (rec_svc.reloading), and a build upserts every track.
                await session.execute(_upsert_changed_tracks([_row(m) for m in metas]))
        return True

    async def mark_deleted(
        self, track_ids: Sequence[uuid.UUID], event: tuple[str, str] | None = None
    ) -> bool:
        async with self.sessions.begin() as session:
            if event is not None and not await self._claim(session, *event):
                return False
            if track_ids:
                await session.execute(
                    insert(TrackInfo)
                    .values([{"track_id": t, "deleted": True} for t in track_ids])
                    .on_conflict_do_update(
                        index_elements=[TrackInfo.track_id],
                        set_={"deleted": True, "updated_at": func.now()},
                        where=TrackInfo.deleted.is_(False),  # stamped once, when it goes
                    )
                )
        return True

    @staticmethod
    async def _claim(session: AsyncSession, event_id: str, topic: str) -> bool:
        result = await session.execute(
            insert(EventApplied)
            .values(event_id=event_id, topic=topic)
            .on_conflict_do_nothing()
            .returning(EventApplied.event_id)
        )
        return result.first() is not None

    # -- Discover Weekly ------------------------------------------------------------------------

    async def discover_weekly(self, user_id: uuid.UUID) -> StoredMix | None:
        async with self.sessions() as session:
            return _mix(await session.get(DiscoverWeekly, user_id))

    async def save_discover_weekly(self, mixes: Sequence[StoredMix]) -> None:
        """Store mixes, but none for a user erased since the build read their history (a build
        runs for minutes; meshkit.tombstones)."""
        if not mixes:
            return
        rows = [
            {
                "user_id": m.user_id,
                "track_ids": m.track_ids,
                "generated_at": m.generated_at,
                "model_version": m.model_version,
            }
            for m in mixes
        ]
        async with self.sessions.begin() as session:
            rows = await _of_living_users(session, rows)
            if rows:
                await session.execute(_upsert(DiscoverWeekly, rows))

    # -- index versions -------------------------------------------------------------------------

    async def record_version(
        self, version: str, path: str, built_at: datetime, counts: dict[str, int], dim: int, *, activate: bool
    ) -> None:
        """One row per index kind; with `activate`, they become the active pair in the same transaction."""
        async with self.sessions.begin() as session:
            for kind in ("tracks", "users"):
                session.add(
                    IndexVersion(
                        kind=kind, version=version, path=path, dim=dim, count=counts[kind], built_at=built_at
                    )
                )
            await session.flush()
            if activate:
                await self._activate(session, version)

    async def activate(self, version: str) -> bool:
        async with self.sessions.begin() as session:
            return await self._activate(session, version)

    @staticmethod
    async def _activate(session: AsyncSession, version: str) -> bool:
        exists = await session.scalar(select(func.count()).where(IndexVersion.version == version))
        if not exists:
            return False
        # The partial unique index is checked per statement: deactivate first (see models.py).
        await session.execute(update(IndexVersion).where(IndexVersion.active).values(active=False))
        await session.execute(update(IndexVersion).where(IndexVersion.version == version).values(active=True))
        return True

    async def active_version(self) -> VersionRow | None:
        return await self._version(IndexVersion.active.is_(True))

    async def find_version(self, version: str) -> VersionRow | None:
        return await self._version(IndexVersion.version == version)

    async def _version(self, condition: Any) -> VersionRow | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(IndexVersion)
                .where(condition, IndexVersion.kind == "tracks")
                .order_by(IndexVersion.built_at.desc())
                .limit(1)
            )
            return None if row is None else VersionRow(row.version, row.path, row.built_at, row.active)


def _mix(row: DiscoverWeekly | None) -> StoredMix | None:
    if row is None:
        return None
    return StoredMix(row.user_id, list(row.track_ids), row.generated_at, row.model_version)


def _meta(row: TrackInfo) -> TrackMeta:
    return TrackMeta(
        track_id=row.track_id,
        artist_ids=tuple(row.artist_ids or ()),
        genres=tuple(row.genres or ()),
        features=row.features,
        popularity=float(row.popularity or 0),
    )


def _row(meta: TrackMeta) -> dict[str, Any]:
    return {
        "track_id": meta.track_id,
        "artist_ids": list(meta.artist_ids),
        "genres": list(meta.genres),
        "features": dict(meta.features) if meta.features else None,
        "popularity": round(meta.popularity),
        "deleted": False,
    }


# The facts a track row carries besides its key; an upsert that changes none of them is skipped.
_TRACK_FACTS = ("artist_ids", "genres", "features", "popularity")


def _upsert_changed_tracks(rows: list[dict[str, Any]]) -> Insert:
    """INSERT track rows, or overwrite (and stamp, and revive) an existing row whose facts differ
    or that was deleted; an identical row is left alone, unstamped."""
    stmt = insert(TrackInfo).values(rows)
    columns = TrackInfo.__table__.c
    differs = or_(
        TrackInfo.deleted.is_(True),
        *(columns[name].is_distinct_from(stmt.excluded[name]) for name in _TRACK_FACTS),
    )
    return stmt.on_conflict_do_update(
        index_elements=[TrackInfo.track_id],
        set_={
            **{name: stmt.excluded[name] for name in _TRACK_FACTS},
            "deleted": False,
            "updated_at": func.now(),
        },
        where=differs,
    )


def _upsert(model: type[Base], rows: list[dict[str, Any]], **also: Any) -> Insert:
    """INSERT rows, or on a primary-key conflict overwrite the columns they carry (and `also`)."""
    stmt = insert(model).values(rows)
    key = [column.name for column in model.__table__.primary_key]
    changed = {name: stmt.excluded[name] for name in rows[0] if name not in key}
    return stmt.on_conflict_do_update(index_elements=key, set_={**changed, **also})


async def _of_living_users(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` without those of users erased before this transaction (meshkit.tombstones)."""
    erased = await tombstones.erased(session, ErasedUser, {row["user_id"] for row in rows})
    return [row for row in rows if row["user_id"] not in erased]
