"""Offline downloads end to end: the SDK's offline manager (SQLite) against the in-process
playback_svc (over the mesh's catalog_svc and library_svc), the encrypted file fetched from the
real media origin app serving what catalog's ingest wrote, and the limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import uuid
from collections import namedtuple
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from grpc import aio
from spotify.library.v1 import library_pb2_grpc
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc
from sqlalchemy import text

from media_svc.app import make_app
from meshkit import ids
from meshkit.server import start_server
from meshkit.signing import default_keyring
from playback_svc.offline import MAX_DOWNLOADS_PER_DEVICE
from playback_svc.offline_licenses import OfflineKeys, derive_content_key
from playback_svc.server import make_setup
from playback_svc.settings import DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING, PlaybackSettings
from sdk import offline_format
from sdk.offline import OfflineError, OfflineManager, decrypt_chunks, unwrap_key
from tests.playback_svc.conftest import PUBLIC_BASE_URL
from tests.playback_svc.helpers import new_user_id, user_metadata

TRUSTED = OfflineKeys.parse(DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING).public_keys()


class Client:
    """What the offline manager needs of a MeshClient: playback and library stubs."""

    def __init__(self, playback_port: int, library_addr: str, user: str, product: str) -> None:
        md = user_metadata(user, product)
        self._channels = [
            grpc.insecure_channel(f"127.0.0.1:{playback_port}"),
            grpc.insecure_channel(library_addr),
        ]
        self.playback = playback_pb2_grpc.PlaybackServiceStub(
            grpc.intercept_channel(self._channels[0], _Metadata(md))
        )
        self.library = library_pb2_grpc.LibraryServiceStub(
            grpc.intercept_channel(self._channels[1], _Metadata(md))
        )

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


_Call = namedtuple("_Call", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"))


class _Metadata(grpc.UnaryUnaryClientInterceptor):
    """Adds the identity metadata Envoy would add after checking the SDK's bearer token."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def intercept_unary_unary(self, continuation, details, request):
        call = _Call(
            details.method,
            details.timeout or 10,
            [*(details.metadata or ()), *self.metadata],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        return continuation(call, request)


@pytest.fixture
async def media_base(media_track) -> AsyncIterator[str]:
    async with TestServer(make_app(media_track.root, default_keyring())) as server:
        yield str(server.make_url("")).rstrip("/")


class Device:
    """One user's device with the SDK's offline manager; every call runs off the event loop."""

    def __init__(
        self,
        playback,
        library_addr: str,
        media_base: str,
        tmp: Path,
        *,
        user: str,
        product: str,
        name: str,
        trusted_keys: dict[str, bytes] | None = TRUSTED,
    ):
        self.user = user
        self.client = Client(playback.port, library_addr, user, product)
        self.clock = [datetime.now(UTC).timestamp()]

        def fetch(url: str) -> Iterator[bytes]:
            assert url.startswith(PUBLIC_BASE_URL + "/media/offline/")
            reply = httpx.get(media_base + url.removeprefix(PUBLIC_BASE_URL), timeout=10)
            reply.raise_for_status()
            yield from (reply.content[i : i + 50_000] for i in range(0, len(reply.content), 50_000))

        self.manager = OfflineManager(
            str(tmp / f"{name}.db"),
            self.client,
            user_id=user,
            device_id=name,
            trusted_keys=trusted_keys,
            fetch=fetch,
            clock=lambda: self.clock[0],
        )

    async def run(self, method: str, *args):
        return await asyncio.to_thread(getattr(self.manager, method), *args)

    async def play(self, track_id: str) -> bytes:
        return await asyncio.to_thread(lambda: b"".join(self.manager.play(track_id)))

    def close(self) -> None:
        self.manager.close()
        self.client.close()


@pytest.fixture
def device_factory(playback, media_base, tmp_path):
    made: list[Device] = []

    def make(
        user: str | None = None,
        product: str = "premium",
        name: str | None = None,
        trusted_keys: dict[str, bytes] | None = TRUSTED,
    ) -> Device:
        device = Device(
            playback,
            playback.settings.library_addr,
            media_base,
            tmp_path,
            user=user or new_user_id(),
            product=product,
            name=name or f"car-{uuid.uuid4().hex[:6]}",
            trusted_keys=trusted_keys,
        )
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises((aio.AioRpcError, grpc.RpcError)) as err:
        await call
    return err.value.code()


async def test_download_then_play_offline_gives_the_original_audio(
    device_factory, media_track, playback
) -> None:
    device = device_factory()
    registered = await device.run("register", "My car", "automobile")
    assert (
        registered.device_id == device.manager.device_id
        and registered.public_key == device.manager.public_key
    )
    license = await device.run("download_track", media_track.track_id)
    assert (license.user_id, license.device_id, license.track_id) == (
        device.user,
        device.manager.device_id,
        media_track.track_id,
    )
    days = (license.expires_at.seconds - license.issued_at.seconds) / 86_400
    assert days == 30
    assert await device.play(media_track.track_id) == media_track.files[320]  # premium: high = 320
    devices = await playback.stub.ListOfflineDevices(
        playback_pb2.ListOfflineDevicesRequest(), metadata=user_metadata(device.user)
    )
    assert [(d.device_id, d.download_count) for d in devices.devices] == [(device.manager.device_id, 1)]
    assert devices.max_devices == 5


async def test_a_license_is_checked_before_every_play(device_factory, media_track, tmp_path) -> None:
    device = device_factory()
    await device.run("register", "Phone", "smartphone")
    await device.run("download_track", media_track.track_id, "low")
    assert await device.play(media_track.track_id) == media_track.files[96]
    device.clock[0] += 31 * 86_400  # a month offline
    with pytest.raises(OfflineError) as expired:
        await device.play(media_track.track_id)
    assert expired.value.reason == "expired"
    device.clock[0] -= 31 * 86_400

    # The same database on another device (or another user's app) does not play.
    stolen = OfflineManager(
        str(tmp_path / f"{device.manager.device_id}.db"),
        device.client,
        user_id=device.user,
        device_id="someone-elses-phone",
        trusted_keys=TRUSTED,
    )
    with pytest.raises(OfflineError) as other_device:
        b"".join(stolen.play(media_track.track_id))
    assert other_device.value.reason == "bad_license"
    stolen.close()

    # A server key the app does not pin is not trusted.
    untrusting = OfflineManager(
        str(tmp_path / f"{device.manager.device_id}.db"),
        device.client,
        user_id=device.user,
        device_id=device.manager.device_id,
        trusted_keys={"dev-ed1": offline_format.public_bytes(Ed25519PrivateKey.generate().public_key())},
    )
    with pytest.raises(OfflineError) as forged:
        b"".join(untrusting.play(media_track.track_id))
    assert forged.value.reason == "bad_license"
    untrusting.close()

    # One flipped byte in the stored audio fails that chunk's authentication.
    db = device.manager.db
    with db:
        rowid = db.execute("SELECT rowid FROM tracks").fetchone()[0]
        with db.blobopen("tracks", "audio", rowid) as blob:
            middle = len(blob) // 2
            blob.seek(middle)
            byte = blob.read(1)
            blob.seek(middle)
            blob.write(bytes([byte[0] ^ 1]))
    with pytest.raises(OfflineError) as tampered:
        await device.play(media_track.track_id)
    assert tampered.value.reason == "tampered"


async def test_free_users_cannot_download(device_factory, media_track, playback) -> None:
    device = device_factory(product="free")
    with pytest.raises(OfflineError) as refused:
        await device.run("register", "Laptop", "computer")
    assert refused.value.reason == "not_premium"
    assert isinstance(refused.value.__cause__, grpc.RpcError)
    assert refused.value.__cause__.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    request = playback_pb2.CreateOfflineDownloadRequest(track_id=media_track.track_id, device_id="x")
    call = playback.stub.CreateOfflineDownload(request, metadata=user_metadata(device.user, "free"))
    assert await code_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_at_most_five_devices_per_user(device_factory) -> None:
    user = new_user_id()
    devices = [device_factory(user=user, name=f"device-{i}") for i in range(6)]
    for device in devices[:5]:
        await device.run("register", "Device", "speaker")
    with pytest.raises(OfflineError) as refused:
        await devices[5].run("register", "One too many", "speaker")
    assert refused.value.reason == "device_limit"
    assert refused.value.__cause__.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[union-attr]
    again = await devices[0].run("register", "Renamed", "speaker")  # re-registering is not a new device
    assert again.name == "Renamed"


async def test_at_most_ten_thousand_downloads_per_device(device_factory, media_track, db, playback) -> None:
    device = device_factory()
    await device.run("register", "Big car", "automobile")
    async with db.begin() as conn:
        device_row = (
            await conn.execute(
                text("SELECT id FROM playback.offline_devices WHERE device_key = :k"),
                {"k": device.manager.device_id},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO playback.offline_licenses (user_id, device_id, track_id, key_id, expires_at) "
                "SELECT :u, :d, gen_random_uuid(), 'bulk', now() + interval '30 days' "
                "FROM generate_series(1, :n)"
            ),
            {"u": ids.decode(device.user), "d": device_row, "n": MAX_DOWNLOADS_PER_DEVICE},
        )
        one = (
            await conn.execute(
                text("SELECT id FROM playback.offline_licenses WHERE device_id = :d LIMIT 1"),
                {"d": device_row},
            )
        ).scalar_one()
    with pytest.raises(OfflineError) as refused:
        await device.run("download_track", media_track.track_id)
    assert refused.value.reason == "track_limit"
    assert refused.value.__cause__.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[union-attr]
    await playback.stub.DeleteOfflineDownload(
        playback_pb2.DeleteOfflineDownloadRequest(license_id=ids.encode(one)),
        metadata=user_metadata(device.user),
    )
    license = await device.run("download_track", media_track.track_id)  # the freed slot is usable
    assert license.track_id == media_track.track_id


async def test_renewal_extends_and_deletion_revokes(device_factory, media_track, playback, db) -> None:
    device = device_factory()
    await device.run("register", "Speaker", "speaker")
    first = await device.run("download_track", media_track.track_id, "normal")
    license_row = text("SELECT renewed_at, expires_at FROM playback.offline_licenses WHERE id = :id")

    async def stored() -> tuple[datetime | None, datetime]:
        async with db.connect() as conn:
            row = (await conn.execute(license_row, {"id": ids.decode(first.license_id)})).one()
            return row[0], row[1]

    assert await device.run("renew") == 0  # nothing close to expiry
    assert (await stored())[0] is None
    device.clock[0] += 25 * 86_400
    assert await device.run("renew") == 1
    renewed = playback_pb2.OfflineLicense.FromString(device.manager._stored(media_track.track_id)[0])
    assert renewed.license_id == first.license_id
    renewed_at, expires_at = await stored()
    assert renewed_at is not None, "the server renewed it"
    assert expires_at - renewed_at == timedelta(days=30)  # another 30 days from the renewal
    assert renewed.expires_at.seconds == int(expires_at.timestamp())
    assert await device.play(media_track.track_id) == media_track.files[160]
    await device.run("remove", media_track.track_id)
    assert await device.run("tracks") == []
    request = playback_pb2.RenewOfflineLicenseRequest(license_id=first.license_id, device_id=first.device_id)
    renew = playback.stub.RenewOfflineLicense(request, metadata=user_metadata(device.user))
    assert await code_of(renew) == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_retried_download_returns_the_same_license(playback, device_factory, media_track) -> None:
    device = device_factory()
    await device.run("register", "Tablet", "tablet")
    request = playback_pb2.CreateOfflineDownloadRequest(
        request_id=uuid.uuid4().hex, track_id=media_track.track_id, device_id=device.manager.device_id
    )
    md = user_metadata(device.user)
    first = await playback.stub.CreateOfflineDownload(request, metadata=md)
    second = await playback.stub.CreateOfflineDownload(request, metadata=md)
    assert first == second
    other = await playback.stub.CreateOfflineDownload(
        playback_pb2.CreateOfflineDownloadRequest(
            track_id=media_track.track_id, device_id=device.manager.device_id
        ),
        metadata=md,
    )
    assert other.license.license_id == first.license.license_id  # one live license per (device, track)


@pytest.mark.parametrize(
    "size", [0, 1, 100, offline_format.DEFAULT_CHUNK_SIZE, offline_format.DEFAULT_CHUNK_SIZE + 1, 200_000]
)
def test_chunked_encryption_round_trips_and_detects_truncation(size: int) -> None:
    key = derive_content_key(b"master", "track.160.v1")
    plain = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sealed = io.BytesIO()
    offline_format.encrypt_file(io.BytesIO(plain), sealed, key, "track.160.v1")
    assert b"".join(decrypt_chunks(io.BytesIO(sealed.getvalue()), key)) == plain
    if size > offline_format.DEFAULT_CHUNK_SIZE:
        cut = sealed.getvalue()[
            : len(sealed.getvalue()) - (size % offline_format.DEFAULT_CHUNK_SIZE or 1) - 16
        ]
        with pytest.raises(OfflineError):  # dropping the last chunk is detected, not a shorter track
            b"".join(decrypt_chunks(io.BytesIO(cut), key))


def test_a_wrapped_key_opens_only_on_its_device() -> None:
    mine, theirs = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    key = derive_content_key(b"master", "k")
    wrapped = offline_format.wrap_key(key, offline_format.public_bytes(mine.public_key()))
    assert unwrap_key(wrapped, mine) == key
    with pytest.raises(OfflineError):
        unwrap_key(wrapped, theirs)


ROTATED_SIGNING = "prod-ed2:" + base64.b64encode(bytes(range(32))).decode()


@contextlib.asynccontextmanager
async def playback_signing_with(playback, signing_keys: str) -> AsyncIterator[int]:
    """Another playback_svc on the same database whose license-signing ring is `signing_keys`
    (what a rolling restart with a rotated Secret brings up); its port."""
    own = PlaybackSettings(offline_signing_keys=signing_keys, counter_enabled=False)
    async with AsyncExitStack() as stack:
        running = await start_server("playback_svc", make_setup(own), playback.settings, stack)
        stack.push_async_callback(running.stop, 0)
        yield running.port


async def test_the_sdk_follows_a_key_rotation_through_the_published_key_set(
    device_factory, media_track, playback
) -> None:
    device = device_factory(trusted_keys=None)  # trusts what the service publishes
    await device.run("register", "Car", "automobile")
    first = await device.run("download_track", media_track.track_id, "low")
    assert first.signing_key_id == "dev-ed1"
    assert set(device.manager.trusted) == {"dev-ed1"}  # fetched when the license named it

    async with playback_signing_with(playback, f"{ROTATED_SIGNING},{DEV_OFFLINE_SIGNING}") as port:
        rotated = Client(port, playback.settings.library_addr, device.user, "premium")
        device.manager.client = rotated
        try:
            # The license signed before the rotation still plays, offline, with the stored set.
            assert await device.play(media_track.track_id) == media_track.files[96]
            published = await asyncio.to_thread(
                rotated.playback.ListOfflineSigningKeys, playback_pb2.ListOfflineSigningKeysRequest()
            )
            assert [key.key_id for key in published.keys] == ["prod-ed2", "dev-ed1"]  # signer first
            # Renewing online brings a license signed by the new key, which the SDK did not know.
            device.clock[0] += 25 * 86_400
            assert await device.run("renew") == 1
            renewed = playback_pb2.OfflineLicense.FromString(
                device.manager.db.execute("SELECT license FROM tracks").fetchone()[0]
            )
            assert renewed.signing_key_id == "prod-ed2"
            assert set(device.manager.trusted) == {"prod-ed2", "dev-ed1"}
            assert await device.play(media_track.track_id) == media_track.files[96]
        finally:
            rotated.close()

    # Once the old key is dropped from the ring, the SDK drops it too, and what it holds still plays.
    async with playback_signing_with(playback, ROTATED_SIGNING) as port:
        after = Client(port, playback.settings.library_addr, device.user, "premium")
        device.manager.client = after
        try:
            assert await asyncio.to_thread(device.manager.refresh_keys) == ["prod-ed2"]
            assert await device.play(media_track.track_id) == media_track.files[96]
        finally:
            after.close()
            device.manager.client = device.client
