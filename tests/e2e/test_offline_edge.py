"""Offline downloads through Envoy between two premium users: nobody renews, deletes or downloads
for another user's device, and a license edited in any field fails the SDK's verifier."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import descriptor, message
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshctl.mesh import Mesh
from playback_svc.offline_licenses import OfflineKeys
from playback_svc.settings import DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING
from sdk import offline_format
from sdk.client import MeshClient
from sdk.offline import OfflineError, OfflineManager
from tests.e2e.clients import bearer, bearer_metadata
from tests.e2e.walk import AUDIO_TRACKS

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]
DEVICE = "car-1"


class Premium:
    """A fresh premium user with one registered device."""

    def __init__(
        self, http: httpx.Client, new_account: NewAccount, grant_premium: Callable[[str], str], name: str
    ) -> None:
        self.http = http
        _, _, self.token = new_account(name)
        self.id = grant_premium(self.token)
        self.key = offline_format.public_bytes(X25519PrivateKey.generate().public_key())
        registered = self.call(
            "POST",
            "/api/playback/offline/devices",
            json={"device_id": DEVICE, "public_key": base64.b64encode(self.key).decode()},
        )
        assert registered.status_code == 200, registered.text

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=bearer(self.token), **kwargs)


def _licenses(database_url: str) -> list[tuple[Any, ...]]:
    """Every license row, every column, in a stable order."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(sa.text("SELECT * FROM playback.offline_licenses ORDER BY id"))
            ]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def channel(running_mesh: Mesh) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running_mesh.grpc_target) as chan:
        yield chan


def test_nobody_renews_deletes_or_downloads_for_another_users_device(
    running_mesh: Mesh,
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    channel: grpc.Channel,
) -> None:
    http = envoy_client()
    alice = Premium(http, new_account, grant_premium, "Alice")
    bob = Premium(http, new_account, grant_premium, "Bob")
    # Alice's second device, which Bob has no device of the same id for.
    assert (
        alice.call(
            "POST",
            "/api/playback/offline/devices",
            json={"device_id": "alice-tablet", "public_key": base64.b64encode(alice.key).decode()},
        ).status_code
        == 200
    )
    download = alice.call(
        "POST",
        "/api/playback/offline/downloads",
        json={"device_id": DEVICE, "track_id": AUDIO_TRACKS[0], "quality": "low"},
    )
    assert download.status_code == 200, download.text
    license_id = download.json()["license"]["license_id"]
    before = _licenses(running_mesh.database_url)

    renew = f"/api/playback/offline/licenses/{license_id}:renew"
    refusals = [
        bob.call("POST", renew, json={"device_id": DEVICE}),
        bob.call("DELETE", f"/api/playback/offline/downloads/{license_id}"),
        bob.call(
            "POST",
            "/api/playback/offline/downloads",
            json={"device_id": "alice-tablet", "track_id": AUDIO_TRACKS[0], "quality": "low"},
        ),
    ]
    for reply in refusals:
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"]["status"] == 404
    playback = playback_pb2_grpc.PlaybackServiceStub(channel)
    as_bob = bearer_metadata(bob.token)
    for call, request in (
        (
            playback.RenewOfflineLicense,
            playback_pb2.RenewOfflineLicenseRequest(license_id=license_id, device_id=DEVICE),
        ),
        (playback.DeleteOfflineDownload, playback_pb2.DeleteOfflineDownloadRequest(license_id=license_id)),
        (
            playback.CreateOfflineDownload,
            playback_pb2.CreateOfflineDownloadRequest(device_id="alice-tablet", track_id=AUDIO_TRACKS[0]),
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(request, metadata=as_bob, timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, request
    assert _licenses(running_mesh.database_url) == before

    # Alice herself may: the refusals were about whose license it is.
    renewed = alice.call("POST", renew, json={"device_id": DEVICE})
    assert renewed.status_code == 200, renewed.text
    assert alice.call("DELETE", f"/api/playback/offline/downloads/{license_id}").status_code == 200
    assert _licenses(running_mesh.database_url) != before


def _edits(license: message.Message) -> Iterator[tuple[str, message.Message]]:
    """The license with one field changed, for every field (and every field of a nested one)."""

    def changed(value: Any, field: descriptor.FieldDescriptor) -> Any:
        if field.type == field.TYPE_BYTES:
            return bytes([value[0] ^ 1]) + value[1:] if value else b"\x01"
        if field.type == field.TYPE_STRING:
            return value[:-1] + ("x" if value[-1:] != "x" else "y") if value else "x"
        if field.type == field.TYPE_BOOL:
            return not value
        return value + 1

    def walk(
        msg: message.Message, set_on: Callable[[message.Message], message.Message], prefix: str
    ) -> Iterator[tuple[str, message.Message]]:
        for field in msg.DESCRIPTOR.fields:
            if field.type == field.TYPE_MESSAGE:
                yield from walk(
                    getattr(msg, field.name),
                    lambda m, f=field: getattr(set_on(m), f.name),
                    f"{prefix}{field.name}.",
                )
                continue
            edited = type(license)()
            edited.CopyFrom(license)
            target = set_on(edited)
            setattr(target, field.name, changed(getattr(target, field.name), field))
            yield f"{prefix}{field.name}", edited

    yield from walk(license, lambda m: m, "")


def test_a_license_edited_in_any_field_fails_the_sdks_verifier(
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    channel: grpc.Channel,
    tmp_path: Path,
) -> None:
    alice = Premium(envoy_client(), new_account, grant_premium, "Alice")
    track = AUDIO_TRACKS[1]
    reply = playback_pb2_grpc.PlaybackServiceStub(channel).CreateOfflineDownload(
        playback_pb2.CreateOfflineDownloadRequest(device_id=DEVICE, track_id=track, quality="low"),
        metadata=bearer_metadata(alice.token),
        timeout=20,
    )
    trusted = OfflineKeys.parse(DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING).public_keys()
    verifier = OfflineManager(
        str(tmp_path / "offline.db"), None, user_id=alice.id, device_id=DEVICE, trusted_keys=trusted
    )
    try:
        verifier.verify(reply.license, track)  # the license as issued verifies
        edits = list(_edits(reply.license))
        # Every field of the message, and of its timestamps, was edited once.
        assert {name for name, _ in edits} >= {
            f.name for f in playback_pb2.OfflineLicense.DESCRIPTOR.fields if f.type != f.TYPE_MESSAGE
        }
        assert {"issued_at.seconds", "issued_at.nanos", "expires_at.seconds", "expires_at.nanos"} <= {
            n for n, _ in edits
        }
        accepted = []
        for name, edited in edits:
            assert edited != reply.license, name
            try:
                verifier.verify(edited, track)
            except OfflineError:
                continue
            accepted.append(name)
        assert not accepted, f"the verifier accepted a license edited in {accepted}"
    finally:
        verifier.close()


def test_the_sdk_refuses_a_tampered_stored_license_and_heals_it_online(
    running_mesh: Mesh,
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    tmp_path: Path,
) -> None:
    alice = Premium(envoy_client(), new_account, grant_premium, "Alice")
    trusted = OfflineKeys.parse(DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING).public_keys()
    track = AUDIO_TRACKS[2]
    with MeshClient(running_mesh.envoy_url, token=alice.token) as client:
        manager = OfflineManager(
            str(tmp_path / "phone.db"), client, user_id=alice.id, device_id="sdk-phone", trusted_keys=trusted
        )
        try:
            manager.register("Alice's phone", "smartphone")
            manager.download_track(track, "low")
            audio = b"".join(manager.play(track))
            assert audio.startswith(b"OggS")

            stored = playback_pb2.OfflineLicense.FromString(
                manager.db.execute("SELECT license FROM tracks WHERE track_id = ?", (track,)).fetchone()[0]
            )
            stored.expires_at.nanos += 1
            with manager.db:
                manager.db.execute(
                    "UPDATE tracks SET license = ? WHERE track_id = ?", (stored.SerializeToString(), track)
                )
            with pytest.raises(OfflineError) as err:
                b"".join(manager.play(track))
            assert err.value.reason == "bad_license"

            manager.download_track(track, "low")  # online again: the broken license is replaced
            assert b"".join(manager.play(track)) == audio
        finally:
            manager.close()
