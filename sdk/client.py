"""Clients of the mesh for cars, speakers and scripts: the generated stubs over one channel to
Envoy, signed in, with a deadline on every call.

`MeshClient` (blocking) and `AsyncMeshClient` (asyncio) have the same surface: `login`, `logout`,
`token`, and one typed stub per service (`catalog`, `playback`, `library`, `auth`, `admin`,
`recs`). SDKs speak native gRPC to the same Envoy port web clients use for JSON; Envoy checks the
`authorization` metadata exactly as it checks the HTTP header.

When a call fails UNAUTHENTICATED (the session expired or was revoked) and the app gave an
`on_session_expired` hook, the hook runs once (typically it calls `login` again, asking the user
if it must) and, if it returns True, the call is made again with the new token.

    with MeshClient("https://mesh.example.com", token_file="~/.config/car/token") as client:
        if not client.token:
            client.login(email, password)
        track = client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2_grpc
from spotify.library.v1 import library_pb2_grpc
from spotify.playback.v1 import playback_pb2_grpc
from spotify.rec.v1 import rec_pb2_grpc

from sdk import connection
from sdk.session import TokenStore

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 10.0
_ANONYMOUS = ("/spotify.auth.v1.AuthService/Login", "/spotify.auth.v1.AuthService/Register")


class _Details(
    NamedTuple(
        "_DetailsBase",
        [
            ("method", str),
            ("timeout", float | None),
            ("metadata", Any),
            ("credentials", Any),
            ("wait_for_ready", bool | None),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    """Call details with our metadata and deadline (the shape grpc's interceptor docs use)."""


def _method(details: Any) -> str:
    """The call's `/package.Service/Method` (grpc.aio hands it over as bytes)."""
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def _metadata(method: str, metadata: Any, token: str) -> list[tuple[str, str]]:
    found = [(str(k), v) for k, v in (metadata or ())]
    if token and method not in _ANONYMOUS and not any(key == "authorization" for key, _ in found):
        found.append(("authorization", f"Bearer {token}"))
    return found


class _Sync(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Token, deadline and request id on every call; one re-login on UNAUTHENTICATED."""

    def __init__(self, client: MeshClient) -> None:
        self.client = client

    def _details(self, details: grpc.ClientCallDetails) -> _Details:
        method = _method(details)
        return _Details(
            method,
            details.timeout if details.timeout is not None else self.client.timeout_s,
            _metadata(method, details.metadata, self.client.token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        request = connection.with_request_id(request)
        used = self.client.token
        call = continuation(self._details(details), request)
        if call.code() == grpc.StatusCode.UNAUTHENTICATED and self.client._relogin(_method(details), used):
            call = continuation(self._details(details), request)
        return call

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    # Uploads: token and deadline only (a stream already sent cannot be sent again after a re-login).
    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class MeshClient:
    """The mesh, blocking: one channel, every public service's stub, the session."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str = "",
        token_file: str | Path | None = None,
        ca: str | Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_session_expired: Callable[[MeshClient], bool] | None = None,
    ) -> None:
        self.endpoint = connection.Endpoint.parse(url)
        self.session = TokenStore(Path(token_file).expanduser() if token_file else None, token)
        self.timeout_s = timeout_s
        self.on_session_expired = on_session_expired
        self._relogin_lock = threading.Lock()
        opts = connection.options()
        self._raw = (
            grpc.secure_channel(self.endpoint.target, connection.credentials(ca), options=opts)
            if self.endpoint.tls
            else grpc.insecure_channel(self.endpoint.target, options=opts)
        )
        channel = grpc.intercept_channel(self._raw, _Sync(self))
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        self.playback = playback_pb2_grpc.PlaybackServiceStub(channel)
        self.library = library_pb2_grpc.LibraryServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.admin = auth_pb2_grpc.AdminServiceStub(channel)
        self.recs = rec_pb2_grpc.RecommendationServiceStub(channel)

    @property
    def token(self) -> str:
        return self.session.token

    def login(self, email: str, password: str) -> auth_pb2.LoginResponse:
        """Sign in; the token is kept (in the token file too, when there is one)."""
        reply = self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        self.session.save(reply.access_token)
        return reply

    def logout(self) -> None:
        """End the session on the server (best effort when offline) and forget the token."""
        try:
            if self.token:
                self.auth.Logout(auth_pb2.LogoutRequest())
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE):  # type: ignore[attr-defined]
                raise
        finally:
            self.session.clear()

    def _relogin(self, method: str, used: str) -> bool:
        """Whether to try again: a new token since `used` failed (another call's re-login, or the
        hook's now). Calls that fail together run the hook once."""
        if self.on_session_expired is None or method in _ANONYMOUS:
            return False
        with self._relogin_lock:
            if self.token and self.token != used:
                return True
            return bool(self.on_session_expired(self)) and self.token != used

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> MeshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Async(
    aio.UnaryUnaryClientInterceptor,
    aio.UnaryStreamClientInterceptor,
    aio.StreamUnaryClientInterceptor,
    aio.StreamStreamClientInterceptor,
):
    """The asyncio twin of `_Sync`."""

    def __init__(self, client: AsyncMeshClient) -> None:
        self.client = client

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        method = _method(details)
        return aio.ClientCallDetails(
            details.method,
            details.timeout if details.timeout is not None else self.client.timeout_s,
            aio.Metadata(*_metadata(method, details.metadata, self.client.token)),
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: aio.ClientCallDetails, request: Any
    ) -> Any:
        request = connection.with_request_id(request)
        used = self.client.token
        call = await continuation(self._details(details), request)
        if await call.code() == grpc.StatusCode.UNAUTHENTICATED and await self.client._relogin(
            _method(details), used
        ):
            call = await continuation(self._details(details), request)
        return call

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(self._details(details), requests)

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(self._details(details), requests)


class AsyncMeshClient:
    """The mesh, for asyncio: the same surface as `MeshClient`, every call awaited."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str = "",
        token_file: str | Path | None = None,
        ca: str | Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_session_expired: Callable[[AsyncMeshClient], Awaitable[bool]] | None = None,
    ) -> None:
        self.endpoint = connection.Endpoint.parse(url)
        self.session = TokenStore(Path(token_file).expanduser() if token_file else None, token)
        self.timeout_s = timeout_s
        self.on_session_expired = on_session_expired
        self._relogin_lock = asyncio.Lock()
        opts = connection.options()
        interceptors = [_Async(self)]
        self._channel = (
            aio.secure_channel(
                self.endpoint.target, connection.credentials(ca), options=opts, interceptors=interceptors
            )
            if self.endpoint.tls
            else aio.insecure_channel(self.endpoint.target, options=opts, interceptors=interceptors)
        )
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self.playback = playback_pb2_grpc.PlaybackServiceStub(self._channel)
        self.library = library_pb2_grpc.LibraryServiceStub(self._channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(self._channel)
        self.admin = auth_pb2_grpc.AdminServiceStub(self._channel)
        self.recs = rec_pb2_grpc.RecommendationServiceStub(self._channel)

    @property
    def token(self) -> str:
        return self.session.token

    async def login(self, email: str, password: str) -> auth_pb2.LoginResponse:
        reply = await self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        self.session.save(reply.access_token)
        return reply

    async def logout(self) -> None:
        try:
            if self.token:
                await self.auth.Logout(auth_pb2.LogoutRequest())
        except aio.AioRpcError as err:
            if err.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE):
                raise
        finally:
            self.session.clear()

    async def _relogin(self, method: str, used: str) -> bool:
        if self.on_session_expired is None or method in _ANONYMOUS:
            return False
        async with self._relogin_lock:
            if self.token and self.token != used:
                return True
            return bool(await self.on_session_expired(self)) and self.token != used

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncMeshClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
