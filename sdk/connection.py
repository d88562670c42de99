"""How an SDK reaches the mesh: one HTTP/2 connection to Envoy, TLS or h2c by the URL's scheme,
kept alive over a flaky link, with gRPC's own retry policy for the calls that are safe to repeat.

Safe to repeat are the reads (`Get*`, `List*`, `BatchGet*`, `Search*`, `Check*`) and the writes
the server de-duplicates: a request with a `request_id` (the SDK fills an empty one before the
first try, so every try carries the same key) or whose items carry an `idempotency_key` (playback
events). They are retried on UNAVAILABLE and DEADLINE_EXCEEDED with exponential backoff and
jitter (gRPC's retry implementation), within the call's deadline and gRPC's retry budget. Every
other write is sent once: its failure is the caller's to judge.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# Importing the stubs registers every public service's descriptors, which the retry policy reads.
from spotify.auth.v1 import auth_pb2_grpc  # noqa: F401
from spotify.catalog.v1 import catalog_pb2_grpc  # noqa: F401
from spotify.library.v1 import library_pb2_grpc  # noqa: F401
from spotify.playback.v1 import playback_pb2_grpc  # noqa: F401
from spotify.rec.v1 import rec_pb2_grpc  # noqa: F401

SERVICES = (
    "spotify.auth.v1.AuthService",
    "spotify.auth.v1.AdminService",
    "spotify.catalog.v1.CatalogService",
    "spotify.library.v1.LibraryService",
    "spotify.playback.v1.PlaybackService",
    "spotify.rec.v1.RecommendationService",
)
READ_PREFIXES = ("Get", "List", "BatchGet", "Search", "Check")
KEY_FIELDS = ("request_id", "idempotency_key")
# Tries in all (gRPC caps maxAttempts at 5), and the backoff between them: 0.2 s, then doubling,
# each randomised by gRPC between 0 and the value.
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"],
}
# A car drives through tunnels: ping an idle connection every 30 s so a dead one is noticed
# within 40 s (not at the next call's deadline), and reconnect quickly, then less often.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 15_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.enable_retries", 1),
]


@dataclass(frozen=True)
class Endpoint:
    """Where the mesh is: `https://host[:port]` (TLS) or `http://host[:port]` (h2c); a bare
    `host:port` is h2c, as the local mesh serves."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r}: the mesh's address is http(s)://host[:port]")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: the mesh's address has no path or query")
        tls = parts.scheme == "https"
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def _has_key(message: Descriptor, depth: int = 1) -> bool:
    for field in message.fields:
        if field.name in KEY_FIELDS:
            return True
        nested = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
        if depth and nested is not None and _has_key(nested, depth - 1):
            return True
    return False


def retryable_methods() -> list[dict[str, str]]:
    """Every public method gRPC may try again, as service-config names."""
    pool = descriptor_pool.Default()
    names = []
    for full_name in SERVICES:
        for method in pool.FindServiceByName(full_name).methods:
            if method.client_streaming:
                continue
            if method.name.startswith(READ_PREFIXES) or _has_key(method.input_type):
                names.append({"service": full_name, "method": method.name})
    return names


def service_config() -> str:
    return json.dumps(
        {
            "methodConfig": [{"name": retryable_methods(), "retryPolicy": RETRY_POLICY}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
    )


def credentials(ca: str | Path | None) -> grpc.ChannelCredentials:
    """TLS credentials: the system's roots, or only the CA the caller names (a private mesh)."""
    roots = Path(ca).read_bytes() if ca is not None else None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def options() -> list[tuple[str, Any]]:
    return [*CHANNEL_OPTIONS, ("grpc.service_config", service_config())]


def with_request_id(request: Any) -> Any:
    """`request` with a fresh `request_id` when it has that field and it is empty, so that every
    try of a retried write is the same write to the server."""
    fields = request.DESCRIPTOR.fields_by_name if isinstance(request, Message) else {}
    if "request_id" in fields and not getattr(request, "request_id"):  # noqa: B009 (not every Message has it)
        copy = type(request)()
        copy.CopyFrom(request)
        setattr(copy, "request_id", uuid.uuid4().hex)  # noqa: B010
        return copy
    return request
