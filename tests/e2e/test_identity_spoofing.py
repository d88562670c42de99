"""Identity headers a client sends are not who it is: through Envoy, over JSON and gRPC, the
session decides the user and the subscription, whatever `x-user-*` headers come along."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from spotify.library.v1 import library_pb2, library_pb2_grpc
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids
from sdk import offline_format
from tests.e2e.clients import bearer, bearer_metadata

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]
PREMIUM_CLAIMS = {"x-user-product": "premium", "x-user-roles": "user,premium"}


@pytest.fixture(scope="module")
def channel(running_mesh: Mesh) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running_mesh.grpc_target) as chan:
        yield chan


def _user_id(http: httpx.Client, token: str) -> str:
    reply = http.get("/v1/me", headers=bearer(token))
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


def _offline_devices(database_url: str, user_id: str) -> int:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM playback.offline_devices WHERE user_id = :u"),
                    {"u": ids.decode(user_id)},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_free_token_claiming_premium_streams_at_160_and_cannot_go_offline(
    running_mesh: Mesh, envoy_client: Client, new_account: NewAccount, channel: grpc.Channel
) -> None:
    _, _, token = new_account()
    http = envoy_client()
    user_id = _user_id(http, token)
    spoofed = {**bearer(token), **PREMIUM_CLAIMS}

    stream = http.get(
        "/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID, "quality": "high"}, headers=spoofed
    )
    assert stream.status_code == 200, stream.text
    assert stream.json()["quality_kbps"] == 160
    assert "_160kbps." in stream.json()["url"]
    assert all(a["quality_kbps"] <= 160 for a in stream.json()["alternatives"])
    playback = playback_pb2_grpc.PlaybackServiceStub(channel)
    metadata = (*bearer_metadata(token), *PREMIUM_CLAIMS.items())
    reply = playback.GetStreamUrl(
        playback_pb2.GetStreamUrlRequest(track_id=demo.DEMO_TRACK_ID, quality="high"),
        metadata=metadata,
        timeout=10,
    )
    assert reply.quality_kbps == 160
    assert all(a.quality_kbps <= 160 for a in reply.alternatives)

    key = offline_format.public_bytes(X25519PrivateKey.generate().public_key())
    refused = http.post(
        "/api/playback/offline/devices",
        json={"device_id": "spoofed-car", "public_key": base64.b64encode(key).decode()},
        headers=spoofed,
    )
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {"status": 403, "message": "offline downloads need a premium subscription"}
    }
    with pytest.raises(grpc.RpcError) as err:
        playback.RegisterOfflineDevice(
            playback_pb2.RegisterOfflineDeviceRequest(device_id="spoofed-car", public_key=key),
            metadata=metadata,
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _offline_devices(running_mesh.database_url, user_id) == 0


def test_a_token_for_a_with_x_user_id_b_writes_as_a(
    envoy_client: Client, new_account: NewAccount, channel: grpc.Channel
) -> None:
    http = envoy_client()
    _, _, token_a = new_account("A")
    _, _, token_b = new_account("B")
    a, b = _user_id(http, token_a), _user_id(http, token_b)
    as_b = {"x-user-id": b, "x-user-roles": "user,admin"}

    created = http.post("/v1/me/playlists", json={"name": "whose?"}, headers={**bearer(token_a), **as_b})
    assert created.status_code == 200, created.text
    assert created.json()["owner"]["id"] == a
    saved = http.put(
        "/v1/me/library",
        params={"uris": f"spotify:track:{demo.DEMO_TRACK_ID}"},
        headers={**bearer(token_a), **as_b},
    )
    assert saved.status_code == 200, saved.text

    library = library_pb2_grpc.LibraryServiceStub(channel)
    metadata = (*bearer_metadata(token_a), *as_b.items())
    over_grpc = library.CreatePlaylist(
        library_pb2.CreatePlaylistRequest(name="whose, over gRPC?"), metadata=metadata, timeout=10
    )
    assert over_grpc.owner.id == a
    # Naming B outright in the request is refused, not written as B.
    with pytest.raises(grpc.RpcError) as err:
        library.CreatePlaylist(
            library_pb2.CreatePlaylistRequest(user_id=b, name="for b"), metadata=metadata, timeout=10
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    def names(token: str) -> list[str]:
        return sorted(p["name"] for p in http.get("/v1/me/playlists", headers=bearer(token)).json()["items"])

    def saved_track(token: str) -> bool:
        reply = http.get(
            "/v1/me/library/contains",
            params={"uris": f"spotify:track:{demo.DEMO_TRACK_ID}"},
            headers=bearer(token),
        )
        assert reply.status_code == 200, reply.text
        return reply.json() == [True]

    assert names(token_a) == ["whose, over gRPC?", "whose?"]
    assert names(token_b) == []
    assert saved_track(token_a) and not saved_track(token_b)
