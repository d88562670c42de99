"""A thin client over the generated stubs: one channel to Envoy, a bearer token, deadlines.

SDKs talk native gRPC to the same Envoy port web clients use for JSON; Envoy authenticates
the `authorization` metadata exactly as it does the HTTP header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from spotify.auth.v1 import auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2_grpc
from spotify.library.v1 import library_pb2_grpc
from spotify.playback.v1 import playback_pb2_grpc
from spotify.rec.v1 import rec_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:8080"


class _CallOptions(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token (when signed in) and a default deadline to every call."""

    def __init__(self, client: MeshClient) -> None:
        self.client = client

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        if self.client.token and not any(key == "authorization" for key, _ in metadata):
            metadata.append(("authorization", f"Bearer {self.client.token}"))
        return _Details(
            details.method,
            details.timeout if details.timeout is not None else self.client.timeout_s,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


class _Details(
    NamedTuple(
        "_DetailsBase",
        [
            ("method", str),
            ("timeout", float | None),
            ("metadata", list),
            ("credentials", Any),
            ("wait_for_ready", bool | None),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    """Call details with our metadata and deadline (the shape grpc's interceptor docs use)."""


class MeshClient:
    """Stubs for every public service over one channel; `token` is the session's bearer token."""

    def __init__(self, target: str = DEFAULT_TARGET, *, token: str = "", timeout_s: float = 10.0) -> None:
        self.token = token
        self.timeout_s = timeout_s
        self._raw = grpc.insecure_channel(target)
        channel = grpc.intercept_channel(self._raw, _CallOptions(self))
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        self.playback = playback_pb2_grpc.PlaybackServiceStub(channel)
        self.library = library_pb2_grpc.LibraryServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.admin = auth_pb2_grpc.AdminServiceStub(channel)
        self.recs = rec_pb2_grpc.RecommendationServiceStub(channel)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> MeshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
