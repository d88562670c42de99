"""Offline downloads: devices, downloads and licenses, with their rules (premium, at most 5
devices per user and 10,000 downloads per device, licenses for 30 days).

Per-track AES-GCM content keys encrypt the audio in chunks, so it can be decrypted while it plays;
the encrypted file of a (track, quality) is made once under the object storage root and shared
by every download of it. What is per user and device is the license: the content key wrapped for
that device's public key, signed with the ids it is bound to. Limits are checked under a lock so
two requests racing cannot both take the last slot. Registering, downloading and renewing are
retry-safe under their idempotency key.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Base64Bytes

from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from meshkit.idempotency import Idempotency, ValueCodec
from meshkit.signing import sign
from playback_svc.clients import Catalog
from playback_svc.models import OfflineDevice, OfflineLicense
from playback_svc.offline_licenses import License, OfflineKeys
from playback_svc.offline_store import OfflineStore
from playback_svc.quality import REQUESTED_KBPS, choose, subscription_cap
from sdk import offline_format

MAX_DEVICES = 5
MAX_DOWNLOADS_PER_DEVICE = 10_000
LICENSE_DAYS = 30
KEY_VERSION = "v1"
OFFLINE_DIR = "offline"
MAX_DEVICE_ID = 128
CODEC = "vorbis"


@dataclass(frozen=True)
class Device:
    """A device registered for offline playback, with its live downloads."""

    device_id: str
    name: str
    device_type: str
    # Base64 where it is stored as JSON (an idempotent answer).
    public_key: Base64Bytes
    registered_at: datetime
    last_seen_at: datetime | None
    download_count: int


@dataclass(frozen=True)
class Download:
    """Where to fetch the encrypted file, and the license that opens it on the device."""

    url: str
    license: License
    size_bytes: int
    quality_kbps: int
    codec: str


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


def _device(device: OfflineDevice, count: int) -> Device:
    return Device(
        device_id=device.device_key,
        name=device.name or "",
        device_type=device.device_type or "",
        public_key=device.public_key or b"",
        registered_at=device.registered_at,
        last_seen_at=device.last_seen_at,
        download_count=count,
    )


class Offline:
    def __init__(
        self,
        store: OfflineStore,
        catalog: Catalog,
        keys: OfflineKeys,
        idempotency: Idempotency,
        storage_root: Path,
        public_base_url: str,
        url_ttl_s: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store, self.catalog, self.keys, self.idempotency = store, catalog, keys, idempotency
        self.root = Path(storage_root)
        self.base = public_base_url.rstrip("/")
        self.url_ttl_s = url_ttl_s
        self.clock = clock

    # ---- devices ----------------------------------------------------------------------------

    async def register(
        self, caller: Caller, key: str, device_id: str, name: str, device_type: str, public_key: bytes
    ) -> Device:
        """Register (or re-register, renamed or with a new key) one of the caller's devices."""
        user = ids.encode(caller.require_user())
        command = {"device_id": device_id, "name": name, "device_type": device_type, "key": public_key.hex()}

        async def write() -> Device:
            return await self._register(caller, device_id, name, device_type, public_key)

        return await self.idempotency.run("offline-device", user, key, command, ValueCodec(Device), write)

    async def _register(
        self, caller: Caller, device_id: str, name: str, device_type: str, public_key: bytes
    ) -> Device:
        user_id = _premium(caller)
        _check_device_id(device_id)
        if len(name) > 100 or len(device_type) > 32:
            raise InvalidArgument("name is at most 100 and device_type at most 32 characters")
        try:
            offline_format.wrap_key(b"\0" * offline_format.KEY_BYTES, public_key)  # validates the key
        except offline_format.OfflineError as exc:
            raise InvalidArgument(exc.message) from exc
        now = self.clock()
        async with self.store.transaction() as tx:
            await tx.lock_devices(user_id)
            device = await tx.device(user_id, device_id)
            takes_a_slot = device is None or device.revoked_at is not None
            if takes_a_slot and await tx.active_devices(user_id) >= MAX_DEVICES:
                raise ResourceExhausted(f"at most {MAX_DEVICES} offline devices: remove one first")
            if device is None:
                device = tx.add_device(user_id, device_id, now)
            device.revoked_at = None
            device.name = name or device.name or device_id[:100]
            device.device_type = device_type or device.device_type
            device.public_key = public_key
            device.last_seen_at = now
            await tx.flush()
            count = await tx.download_count(device.id, now)
        return _device(device, count)

    async def devices(self, caller: Caller) -> list[Device]:
        """The caller's active devices, in registration order."""
        user_id = caller.require_user()
        found = await self.store.devices_with_counts(user_id, self.clock())
        return [_device(device, count) for device, count in found]

    # ---- downloads and licenses -------------------------------------------------------------

    async def download(self, caller: Caller, key: str, device_id: str, track: str, quality: str) -> Download:
        """A track (an id or URI) for offline playback on one of the caller's devices."""
        user = ids.encode(caller.require_user())
        command = {"device_id": device_id, "track": track, "quality": quality}

        async def write() -> Download:
            return await self._download(caller, device_id, track, quality)

        return await self.idempotency.run("offline-download", user, key, command, ValueCodec(Download), write)

    async def _download(self, caller: Caller, device_id: str, track: str, quality: str) -> Download:
        user_id = _premium(caller)
        _check_device_id(device_id)
        track_id = ids.encode(ids.parse_id_or_uri(track, "track"))
        wanted = quality.strip().lower() or "high"
        if wanted not in REQUESTED_KBPS or wanted == "auto":
            raise InvalidArgument(f"quality must be one of low, normal, high; got {quality!r}")
        device = await self.store.active_device(user_id, device_id)
        if device is None:
            raise NotFound(f"device {device_id} is not registered for offline playback")
        if not device.public_key:
            raise FailedPrecondition(f"device {device_id} has no public key: register it again")
        files = await self.catalog.audio_files(track_id)
        cap = subscription_cap(caller.product)
        choice = choose(files, min(REQUESTED_KBPS[wanted] or cap, cap), cap)
        if choice is None:
            raise FailedPrecondition(f"track {track_id} has no audio to download yet")
        kbps = choice.chosen.bitrate_kbps
        key_id = f"{track_id}.{kbps}.{KEY_VERSION}"
        relative = f"{OFFLINE_DIR}/{track_id}_{kbps}kbps.{KEY_VERSION}.spenc"
        size = await asyncio.get_running_loop().run_in_executor(
            None, self._ensure_encrypted, choice.chosen.storage_path, relative, key_id
        )

        now = self.clock()
        async with self.store.transaction() as tx:
            locked = await tx.lock_device(device.id)
            if locked is None or locked.revoked_at is not None:
                raise NotFound(f"device {device_id} is not registered for offline playback")
            row = await tx.live_license(device.id, ids.decode(track_id))
            if row is None:
                if await tx.download_count(device.id, now) >= MAX_DOWNLOADS_PER_DEVICE:
                    raise ResourceExhausted(
                        f"at most {MAX_DOWNLOADS_PER_DEVICE} downloads per device: remove some first"
                    )
                row = tx.add_license(user_id, device.id, ids.decode(track_id))
            else:
                row.renewed_at = now
            row.key_id = key_id
            row.issued_at = now
            row.expires_at = now + timedelta(days=LICENSE_DAYS)
            locked.last_seen_at = now
            await tx.flush()
            license = self._license(row, locked)
        url = self.base + sign("/media/" + relative, ids.encode(user_id), ttl_s=self.url_ttl_s)
        return Download(url=url, license=license, size_bytes=size, quality_kbps=kbps, codec=CODEC)

    async def renew(self, caller: Caller, key: str, license_id: str, device_id: str) -> License:
        """Another 30 days from now, while the subscription is premium, the license is live and
        its track was not taken down."""
        user = ids.encode(caller.require_user())
        command = {"license_id": license_id, "device_id": device_id}

        async def write() -> License:
            return await self._renew(caller, license_id, device_id)

        return await self.idempotency.run("offline-renew", user, key, command, ValueCodec(License), write)

    async def _renew(self, caller: Caller, license_id: str, device_id: str) -> License:
        user_id = _premium(caller)
        now = self.clock()
        async with self.store.transaction() as tx:
            row = await tx.lock_license(ids.decode(license_id, what="license id"), user_id)
            if row is None:
                raise NotFound(f"license {license_id} not found")
            device = await tx.device_by_id(row.device_id)
            if device is None or device.device_key != device_id:
                raise PermissionDenied("this license is bound to another device")
            if row.revoked_at is not None or device.revoked_at is not None:
                raise FailedPrecondition("this license was revoked; download the track again")
            # A track taken down is not renewed (FAILED_PRECONDITION in catalog's words); the
            # answer is usually cached, so the lock is rarely held over a call.
            await self.catalog.audio_files(ids.encode(row.track_id))
            row.expires_at = now + timedelta(days=LICENSE_DAYS)
            row.renewed_at = now
            device.last_seen_at = now
            await tx.flush()
            return self._license(row, device)

    async def delete(self, caller: Caller, license_id: str) -> None:
        """Revoke the license (idempotent), which frees its slot on the device."""
        user_id = caller.require_user()
        async with self.store.transaction() as tx:
            row = await tx.lock_license(ids.decode(license_id, what="license id"), user_id)
            if row is None:
                raise NotFound(f"license {license_id} not found")
            if row.revoked_at is None:
                row.revoked_at = self.clock()

    # ---- helpers ----------------------------------------------------------------------------

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
                offline_format.encrypt_file(src, dst, self.keys.content_key(key_id), key_id)
            os.replace(partial, target)  # atomic: readers see the whole file or none
        finally:
            partial.unlink(missing_ok=True)
        return target.stat().st_size

    def _license(self, row: OfflineLicense, device: OfflineDevice) -> License:
        assert device.public_key is not None
        unsigned = License(
            license_id=ids.encode(row.id),
            user_id=ids.encode(row.user_id),
            device_id=device.device_key,
            track_id=ids.encode(row.track_id),
            key_id=row.key_id,
            content_key=offline_format.wrap_key(self.keys.content_key(row.key_id), device.public_key),
            chunk_size=offline_format.DEFAULT_CHUNK_SIZE,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
        )
        return self.keys.sign(unsigned)
