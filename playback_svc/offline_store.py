"""SQL for offline devices and licenses (``playback.offline_devices``, ``playback.offline_licenses``).

Limits are the domain's; this store gives it the locks they are checked under: a per-user
advisory lock for devices, the device's row lock for its downloads, the license's row lock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db import SqlStore, transaction_lock
from playback_svc.models import OfflineDevice, OfflineLicense


async def _download_count(session: AsyncSession, device_id: uuid.UUID, now: datetime) -> int:
    """Live licenses on the device: neither revoked nor expired."""
    count = await session.scalar(
        select(func.count())
        .select_from(OfflineLicense)
        .where(
            OfflineLicense.device_id == device_id,
            OfflineLicense.revoked_at.is_(None),
            OfflineLicense.expires_at > now,
        )
    )
    return int(count or 0)


class OfflineTransaction:
    """Reads and writes inside one transaction; rows it returns are saved when it commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_devices(self, user_id: uuid.UUID) -> None:
        """Serialize changes to one user's set of devices until the transaction ends."""
        await self.session.execute(transaction_lock(f"playback-offline-devices:{user_id}"))

    async def device(self, user_id: uuid.UUID, device_key: str) -> OfflineDevice | None:
        """The user's device by its client-chosen key, revoked or not."""
        return await self.session.scalar(
            select(OfflineDevice).where(
                OfflineDevice.user_id == user_id, OfflineDevice.device_key == device_key
            )
        )

    async def active_devices(self, user_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(OfflineDevice)
            .where(OfflineDevice.user_id == user_id, OfflineDevice.revoked_at.is_(None))
        )
        return int(count or 0)

    async def lock_device(self, device_id: uuid.UUID) -> OfflineDevice | None:
        return await self.session.scalar(
            select(OfflineDevice).where(OfflineDevice.id == device_id).with_for_update()
        )

    async def device_by_id(self, device_id: uuid.UUID) -> OfflineDevice | None:
        return await self.session.get(OfflineDevice, device_id)

    async def live_license(self, device_id: uuid.UUID, track_id: uuid.UUID) -> OfflineLicense | None:
        """The device's unrevoked license of the track (at most one), expired or not."""
        return await self.session.scalar(
            select(OfflineLicense).where(
                OfflineLicense.device_id == device_id,
                OfflineLicense.track_id == track_id,
                OfflineLicense.revoked_at.is_(None),
            )
        )

    async def lock_license(self, license_id: uuid.UUID, user_id: uuid.UUID) -> OfflineLicense | None:
        """The user's license by id, row-locked; None for another user's."""
        return await self.session.scalar(
            select(OfflineLicense)
            .where(OfflineLicense.id == license_id, OfflineLicense.user_id == user_id)
            .with_for_update()
        )

    def add_device(self, user_id: uuid.UUID, device_key: str, registered_at: datetime) -> OfflineDevice:
        device = OfflineDevice(user_id=user_id, device_key=device_key, registered_at=registered_at)
        self.session.add(device)
        return device

    def add_license(self, user_id: uuid.UUID, device_id: uuid.UUID, track_id: uuid.UUID) -> OfflineLicense:
        license = OfflineLicense(user_id=user_id, device_id=device_id, track_id=track_id)
        self.session.add(license)
        return license

    async def download_count(self, device_id: uuid.UUID, now: datetime) -> int:
        return await _download_count(self.session, device_id, now)

    async def flush(self) -> None:
        """Write new and changed rows now, so generated ids are known."""
        await self.session.flush()


class OfflineStore(SqlStore):
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OfflineTransaction]:
        """One transaction, committed when the block ends (rolled back if it raises)."""
        async with self.sessions() as session, session.begin():
            yield OfflineTransaction(session)

    async def active_device(self, user_id: uuid.UUID, device_key: str) -> OfflineDevice | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(OfflineDevice).where(
                    OfflineDevice.user_id == user_id,
                    OfflineDevice.device_key == device_key,
                    OfflineDevice.revoked_at.is_(None),
                )
            )

    async def devices_with_counts(self, user_id: uuid.UUID, now: datetime) -> list[tuple[OfflineDevice, int]]:
        """The user's active devices in registration order, each with its live download count."""
        async with self.sessions() as session:
            found = (
                await session.scalars(
                    select(OfflineDevice)
                    .where(OfflineDevice.user_id == user_id, OfflineDevice.revoked_at.is_(None))
                    .order_by(OfflineDevice.registered_at, OfflineDevice.id)
                )
            ).all()
            return [(device, await _download_count(session, device.id, now)) for device in found]
