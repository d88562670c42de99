"""Offline devices, downloads and licenses: the rules (premium, 5 devices, 10,000 downloads per
device, 30 days) and their storage.

Limits are checked under a lock so two requests racing cannot both take the last slot: devices
under a per-user advisory lock, downloads under the device's row lock. The encrypted file of a
(track, quality) is made once under the object storage root and shared by every download of it;
what is per user and device is the license: the content key wrapped for that device's public key,
signed together with the ids it is bound to.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from meshkit.signing import sign
from playback_svc.catalog import CatalogClient
from playback_svc.models import OfflineDevice, OfflineLicense
from playback_svc.offline import crypto
from playback_svc.offline.keys import OfflineKeys
from playback_svc.quality import REQUESTED_KBPS, choose, subscription_cap

MAX_DEVICES = 5
MAX_DOWNLOADS_PER_DEVICE = 10_000
LICENSE_DAYS = 30
KEY_VERSION = "v1"
OFFLINE_DIR = "offline"
MAX_DEVICE_ID = 128


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _now() -> datetime:
    return datetime.now(UTC)


def _premium(caller: Caller) -> uuid.UUID:
    user_id = caller.require_user()
    if not caller.is_premium:
        raise PermissionDenied("offline downloads need a premium subscription")
    return user_id


def _check_device_id(device_id: str) -> None:
    if not device_id or len(device_id) > MAX_DEVICE_ID:
        raise InvalidArgument(f"device_id is required (at most {MAX_DEVICE_ID} characters)")


class Offline:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogClient,
        keys: OfflineKeys,
        storage_root: Path,
        public_base_url: str,
        url_ttl_s: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.keys = keys
        self.root = Path(storage_root)
        self.base = public_base_url.rstrip("/")
        self.url_ttl_s = url_ttl_s
        self.clock = clock

    # ---- devices ----------------------------------------------------------------------------

    async def register(
        self, caller: Caller, request: playback_pb2.RegisterOfflineDeviceRequest
    ) -> playback_pb2.OfflineDevice:
        user_id = _premium(caller)
        _check_device_id(request.device_id)
        if len(request.name) > 100 or len(request.device_type) > 32:
            raise InvalidArgument("name is at most 100 and device_type at most 32 characters")
        try:
            crypto.wrap_key(b"\0" * crypto.KEY_BYTES, request.public_key)  # validates the key
        except crypto.OfflineFormatError as exc:
            raise InvalidArgument(str(exc)) from exc
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"playback-offline-devices:{user_id}"},
            )
            device = await session.scalar(
                select(OfflineDevice).where(
                    OfflineDevice.user_id == user_id, OfflineDevice.device_key == request.device_id
                )
            )
            if device is None or device.revoked_at is not None:
                active = await session.scalar(
                    select(func.count())
                    .select_from(OfflineDevice)
                    .where(OfflineDevice.user_id == user_id, OfflineDevice.revoked_at.is_(None))
                )
                if (active or 0) >= MAX_DEVICES:
                    raise ResourceExhausted(f"at most {MAX_DEVICES} offline devices: remove one first")
            if device is None:
                device = OfflineDevice(user_id=user_id, device_key=request.device_id, registered_at=now)
                session.add(device)
            device.revoked_at = None
            device.name = request.name or device.name or request.device_id[:100]
            device.device_type = request.device_type or device.device_type
            device.public_key = bytes(request.public_key)
            device.last_seen_at = now
            await session.flush()
            count = await self._download_count(session, device.id, now)
        return self._device(device, count)

    async def devices(self, caller: Caller) -> playback_pb2.ListOfflineDevicesResponse:
        user_id = caller.require_user()
        now = self.clock()
        async with self.sessions() as session:
            found = (
                await session.scalars(
                    select(OfflineDevice)
                    .where(OfflineDevice.user_id == user_id, OfflineDevice.revoked_at.is_(None))
                    .order_by(OfflineDevice.registered_at, OfflineDevice.id)
                )
            ).all()
            counts = {d.id: await self._download_count(session, d.id, now) for d in found}
        return playback_pb2.ListOfflineDevicesResponse(
            devices=[self._device(d, counts[d.id]) for d in found], max_devices=MAX_DEVICES
        )

    # ---- downloads and licenses -------------------------------------------------------------

    async def download(
        self, caller: Caller, request: playback_pb2.CreateOfflineDownloadRequest
    ) -> playback_pb2.CreateOfflineDownloadResponse:
        user_id = _premium(caller)
        _check_device_id(request.device_id)
        track_id = ids.encode(ids.parse_id_or_uri(request.track_id, "track"))
        quality = request.quality.strip().lower() or "high"
        if quality not in REQUESTED_KBPS or quality == "auto":
            raise InvalidArgument(f"quality must be one of low, normal, high; got {request.quality!r}")
        device = await self._device_row(user_id, request.device_id)
        files = await self.catalog.audio_files(track_id)
        cap = subscription_cap(caller.product)
        choice = choose(files, min(REQUESTED_KBPS[quality] or cap, cap), cap)
        if choice is None:
            raise FailedPrecondition(f"track {track_id} has no audio to download yet")
        kbps = choice.chosen.bitrate_kbps
        key_id = f"{track_id}.{kbps}.{KEY_VERSION}"
        relative = f"{OFFLINE_DIR}/{track_id}_{kbps}kbps.{KEY_VERSION}.spenc"
        size = await asyncio.get_running_loop().run_in_executor(
            None, self._ensure_encrypted, choice.chosen.storage_path, relative, key_id
        )

        now = self.clock()
        async with self.sessions() as session, session.begin():
            locked = await session.scalar(
                select(OfflineDevice).where(OfflineDevice.id == device.id).with_for_update()
            )
            if locked is None or locked.revoked_at is not None:
                raise NotFound(f"device {request.device_id} is not registered for offline playback")
            row = await session.scalar(
                select(OfflineLicense).where(
                    OfflineLicense.device_id == device.id,
                    OfflineLicense.track_id == ids.decode(track_id),
                    OfflineLicense.revoked_at.is_(None),
                )
            )
            if row is None:
                if await self._download_count(session, device.id, now) >= MAX_DOWNLOADS_PER_DEVICE:
                    raise ResourceExhausted(
                        f"at most {MAX_DOWNLOADS_PER_DEVICE} downloads per device: remove some first"
                    )
                row = OfflineLicense(user_id=user_id, device_id=device.id, track_id=ids.decode(track_id))
                session.add(row)
            else:
                row.renewed_at = now
            row.key_id = key_id
            row.issued_at = now
            row.expires_at = now + timedelta(days=LICENSE_DAYS)
            locked.last_seen_at = now
            await session.flush()
            license = self._license(row, locked)
        url = self.base + sign("/media/" + relative, ids.encode(user_id), ttl_s=self.url_ttl_s)
        return playback_pb2.CreateOfflineDownloadResponse(
            download_url=url, license=license, size_bytes=size, quality_kbps=kbps, codec="vorbis"
        )

    async def renew(
        self, caller: Caller, request: playback_pb2.RenewOfflineLicenseRequest
    ) -> playback_pb2.OfflineLicense:
        """Another 30 days from now, while the subscription is premium and the license is live."""
        user_id = _premium(caller)
        license_id = ids.decode(request.license_id, what="license id")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            row = await session.scalar(
                select(OfflineLicense)
                .where(OfflineLicense.id == license_id, OfflineLicense.user_id == user_id)
                .with_for_update()
            )
            if row is None:
                raise NotFound(f"license {request.license_id} not found")
            device = await session.get(OfflineDevice, row.device_id)
            if device is None or device.device_key != request.device_id:
                raise PermissionDenied("this license is bound to another device")
            if row.revoked_at is not None or device.revoked_at is not None:
                raise FailedPrecondition("this license was revoked; download the track again")
            row.expires_at = now + timedelta(days=LICENSE_DAYS)
            row.renewed_at = now
            device.last_seen_at = now
            await session.flush()
            return self._license(row, device)

    async def delete(self, caller: Caller, request: playback_pb2.DeleteOfflineDownloadRequest) -> None:
        """Revoke the license (idempotent), which frees its slot on the device."""
        user_id = caller.require_user()
        license_id = ids.decode(request.license_id, what="license id")
        async with self.sessions() as session, session.begin():
            row = await session.scalar(
                select(OfflineLicense)
                .where(OfflineLicense.id == license_id, OfflineLicense.user_id == user_id)
                .with_for_update()
            )
            if row is None:
                raise NotFound(f"license {request.license_id} not found")
            if row.revoked_at is None:
                row.revoked_at = self.clock()

    # ---- helpers ----------------------------------------------------------------------------

    async def _device_row(self, user_id: uuid.UUID, device_key: str) -> OfflineDevice:
        async with self.sessions() as session:
            device = await session.scalar(
                select(OfflineDevice).where(
                    OfflineDevice.user_id == user_id,
                    OfflineDevice.device_key == device_key,
                    OfflineDevice.revoked_at.is_(None),
                )
            )
        if device is None:
            raise NotFound(f"device {device_key} is not registered for offline playback")
        if not device.public_key:
            raise FailedPrecondition(f"device {device_key} has no public key: register it again")
        return device

    @staticmethod
    async def _download_count(session: AsyncSession, device_id: uuid.UUID, now: datetime) -> int:
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

    def _ensure_encrypted(self, source_path: str, relative: str, key_id: str) -> int:
        """Encrypt the rendition once (blocking: run in an executor); returns the encrypted size."""
        target = self.root / relative
        if target.exists():
            return target.stat().st_size
        source = self.root / source_path.lstrip("/")
        if not source.is_file():
            raise FailedPrecondition("the track's audio file is missing from storage")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with source.open("rb") as src, partial.open("wb") as dst:
                crypto.encrypt_file(src, dst, crypto.derive_content_key(self.keys.master, key_id), key_id)
            os.replace(partial, target)  # atomic: readers see the whole file or none
        finally:
            partial.unlink(missing_ok=True)
        return target.stat().st_size

    def _license(self, row: OfflineLicense, device: OfflineDevice) -> playback_pb2.OfflineLicense:
        assert device.public_key is not None
        license = playback_pb2.OfflineLicense(
            license_id=ids.encode(row.id),
            user_id=ids.encode(row.user_id),
            device_id=device.device_key,
            track_id=ids.encode(row.track_id),
            key_id=row.key_id,
            content_key=crypto.wrap_key(
                crypto.derive_content_key(self.keys.master, row.key_id), device.public_key
            ),
            chunk_size=crypto.DEFAULT_CHUNK_SIZE,
            issued_at=_ts(row.issued_at),
            expires_at=_ts(row.expires_at),
        )
        kid, key = self.keys.signer
        crypto.sign_license(license, key, kid)
        return license

    @staticmethod
    def _device(device: OfflineDevice, count: int) -> playback_pb2.OfflineDevice:
        reply = playback_pb2.OfflineDevice(
            device_id=device.device_key,
            name=device.name or "",
            device_type=device.device_type or "",
            public_key=device.public_key or b"",
            registered_at=_ts(device.registered_at),
            download_count=count,
        )
        if device.last_seen_at is not None:
            reply.last_seen_at.CopyFrom(_ts(device.last_seen_at))
        return reply
