"""The SDK's clients through the test mesh's Envoy: signing in and out, the token file, the
re-login hook, TLS, the retry policy and the request ids that make retried writes safe.

Every client connects through a relay from a loopback address of its own: login is limited per
client address, and the SDK (like any gRPC client) cannot pick its source address.
"""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2

from devdata import demo
from meshctl import envoy_config
from meshctl.mesh import Mesh
from sdk import connection
from sdk.client import AsyncMeshClient, MeshClient
from tests.e2e.clients import relayed_from

Account = tuple[str, str, str]


@pytest.fixture
def url(running_mesh: Mesh) -> Iterator[str]:
    with relayed_from(running_mesh.grpc_target) as relayed:
        yield f"http://{relayed}"


@pytest.fixture
def account(new_account: Callable[..., Account]) -> Account:
    return new_account("SDK Listener")


def _revoke(url: str, token: str) -> None:
    """End every session of the token's user, as signing out on another device does."""
    with MeshClient(url, token=token) as other:
        other.auth.LogoutEverywhere(auth_pb2.LogoutEverywhereRequest())


def test_login_keeps_the_token_in_the_named_file_and_logout_ends_the_session(
    url: str, account: Account, tmp_path: Path
) -> None:
    email, password, _ = account
    token_file = tmp_path / "car" / "token"
    with MeshClient(url, token_file=token_file) as client:
        client.login(email, password)
        assert token_file.read_text() == client.token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = client.token
    with MeshClient(url, token_file=token_file) as again:  # a restart: signed in from the file
        assert again.auth.GetMe(auth_pb2.GetMeRequest()).email == email
        again.logout()
        assert not token_file.exists() and again.token == ""
    with MeshClient(url, token=token) as stale, pytest.raises(grpc.RpcError) as refused:
        stale.auth.GetMe(auth_pb2.GetMeRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_an_expired_session_runs_the_relogin_hook_once_and_the_calls_succeed(
    url: str, account: Account
) -> None:
    email, password, _ = account
    hooks: list[str] = []

    def relogin(client: MeshClient) -> bool:
        hooks.append(client.token)
        client.login(email, password)
        return True

    with MeshClient(url, on_session_expired=relogin) as client:
        client.login(email, password)
        _revoke(url, client.token)
        results: list[str] = []

        def call() -> None:
            results.append(client.auth.GetMe(auth_pb2.GetMeRequest()).email)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert results == [email] * 4
        assert len(hooks) == 1


def test_without_a_hook_an_expired_session_is_the_callers_error(url: str, account: Account) -> None:
    email, password, _ = account
    with MeshClient(url) as client:
        client.login(email, password)
        _revoke(url, client.token)
        with pytest.raises(grpc.RpcError) as refused:
            client.auth.GetMe(auth_pb2.GetMeRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_the_asyncio_client_has_the_same_surface(url: str, account: Account) -> None:
    email, password, _ = account

    async def session() -> tuple[str, str, int]:
        hooks = 0

        async def relogin(client: AsyncMeshClient) -> bool:
            nonlocal hooks
            hooks += 1
            await client.login(email, password)
            return True

        async with AsyncMeshClient(url, on_session_expired=relogin) as client:
            await client.login(email, password)
            track = await client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
            _revoke(url, client.token)
            me = await client.auth.GetMe(auth_pb2.GetMeRequest())
            await client.logout()
            return track.id, me.email, hooks

    assert asyncio.run(session()) == (demo.DEMO_TRACK_ID, email, 1)


def test_tls_by_url_scheme_verifies_the_named_ca(
    tls_edge: tuple[str, bytes], account: Account, tmp_path: Path
) -> None:
    edge, certificate = tls_edge
    ca = tmp_path / "mesh-ca.pem"
    ca.write_bytes(certificate)
    _, _, token = account
    with relayed_from(edge.removeprefix("https://")) as relayed:
        with MeshClient(f"https://{relayed}", token=token, ca=ca) as client:
            assert client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID)).id
        (tmp_path / "other").mkdir()
        wrong = envoy_config.throwaway_certificate(tmp_path / "other")["cert_chain"]
        with (
            MeshClient(f"https://{relayed}", token=token, ca=wrong, timeout_s=3) as client,
            pytest.raises(grpc.RpcError) as refused,
        ):
            client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_a_write_with_a_request_id_gets_one_filled_in_and_a_repeat_is_the_same_write(
    url: str, account: Account
) -> None:
    _, _, token = account
    with MeshClient(url, token=token) as client:
        first = library_pb2.CreatePlaylistRequest(name="Road trip")
        filled = connection.with_request_id(first)
        assert filled.request_id and not first.request_id
        created = client.library.CreatePlaylist(filled)
        again = client.library.CreatePlaylist(filled)
        assert again.id == created.id
        other = client.library.CreatePlaylist(library_pb2.CreatePlaylistRequest(name="Road trip"))
        assert other.id != created.id  # no request id given: the SDK made a new one


def test_only_reads_and_writes_the_server_deduplicates_are_retried() -> None:
    names = {(n["service"], n["method"]) for n in connection.retryable_methods()}
    assert ("spotify.catalog.v1.CatalogService", "GetTrack") in names
    assert ("spotify.playback.v1.PlaybackService", "ReportPlaybackEvents") in names  # events carry keys
    assert ("spotify.library.v1.LibraryService", "CreatePlaylist") in names  # request_id
    assert ("spotify.auth.v1.AuthService", "Login") not in names
    assert ("spotify.auth.v1.AuthService", "LogoutEverywhere") not in names
    assert ("spotify.catalog.v1.CatalogService", "IngestTrackAudio") not in names  # client streaming


def test_the_mesh_address_is_a_url() -> None:
    assert connection.Endpoint.parse("https://mesh.example.com") == connection.Endpoint(
        "mesh.example.com", 443, True
    )
    assert connection.Endpoint.parse("http://127.0.0.1:8080") == connection.Endpoint("127.0.0.1", 8080, False)
    assert connection.Endpoint.parse("127.0.0.1:8080").tls is False
    for bad in ("ftp://mesh", "https://mesh/api", "https://"):
        with pytest.raises(ValueError, match="http"):
            connection.Endpoint.parse(bad)
