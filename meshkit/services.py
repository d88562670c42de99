"""The registry of the mesh's processes: one entry per service, read by everything that lists them.

Settings (default addresses), the server bootstrap (listen and metrics ports), the migration
runner (which schema each service owns), the launcher (what to start, in which order) and the
Envoy rendering (which gRPC services are routed, and how each RPC is exposed) all read this
module, so adding a service or an RPC exception is one edit here.

The edge policy of an RPC is derived, not listed, for the common case: an RPC with a
`google.api.http` rule is public JSON and gRPC behind a session; everything else is internal
(Envoy answers 404), so a new internal RPC is closed to the outside by default. Only the
exceptions are named: the anonymous RPCs and the public gRPC-only ones.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass


class EdgePolicy(enum.Enum):
    """How Envoy exposes one RPC."""

    # Routed without a session (ext_authz off): register and log in.
    ANONYMOUS = "anonymous"
    # Routed behind a session, as JSON (it has an HTTP rule) and as gRPC.
    AUTHENTICATED = "authenticated"
    # Routed behind a session as gRPC only: no JSON form (uploads, typed multi-gets).
    GRPC_ONLY = "grpc-only"
    # Never routed: other services on the mesh network call it directly.
    INTERNAL = "internal"


@dataclass(frozen=True)
class Service:
    """One process of the mesh."""

    # The Python package, which is also the process name (`python -m <name>`).
    name: str
    # Where it listens by default (gRPC, or HTTP for the media origin).
    port: int
    # Its Prometheus exporter's default port.
    metrics_port: int
    # The environment variable other processes read its address from.
    addr_env: str
    # The PostgreSQL schema it owns and migrates; None when it keeps no tables.
    schema: str | None = None
    # Fully-qualified gRPC services Envoy routes to it (public; transcoded where they have rules).
    public_grpc: tuple[str, ...] = ()
    # gRPC services only Envoy itself calls (ext_authz): never routed from outside.
    edge_grpc: tuple[str, ...] = ()
    # Whether it speaks gRPC at all (the media origin serves plain HTTP).
    grpc: bool = True
    # Where other processes of the mesh call it: every RPC, the internal ones included. The port
    # above serves Envoy the routed RPCs only, so each port can be fenced on its own (k8s
    # NetworkPolicies: the public port for Envoy, this one for `calls` of the others).
    internal_port: int | None = None
    # The services whose internal port this one calls (checked against its code by a test).
    calls: tuple[str, ...] = ()

    @property
    def host_name(self) -> str:
        """Its DNS-friendly name (k8s Services, Envoy clusters in the k8s target)."""
        return self.name.replace("_", "-")


SERVICES: tuple[Service, ...] = (
    Service(
        "catalog_svc",
        port=50051,
        internal_port=50061,
        calls=("auth_svc",),
        metrics_port=9111,
        addr_env="CATALOG_ADDR",
        schema="catalog",
        public_grpc=("spotify.catalog.v1.CatalogService",),
    ),
    Service(
        "playback_svc",
        port=50052,
        internal_port=50062,
        calls=("catalog_svc", "library_svc", "auth_svc"),
        metrics_port=9112,
        addr_env="PLAYBACK_ADDR",
        schema="playback",
        public_grpc=("spotify.playback.v1.PlaybackService",),
    ),
    Service(
        "library_svc",
        port=50053,
        internal_port=50063,
        calls=("catalog_svc", "auth_svc"),
        metrics_port=9113,
        addr_env="LIBRARY_ADDR",
        schema="library",
        public_grpc=("spotify.library.v1.LibraryService",),
    ),
    Service(
        "auth_svc",
        port=50054,
        internal_port=50064,
        # Data exports: every service's part.
        calls=("catalog_svc", "library_svc", "playback_svc", "rec_svc"),
        metrics_port=9114,
        addr_env="AUTH_ADDR",
        schema="auth",
        public_grpc=("spotify.auth.v1.AuthService", "spotify.auth.v1.AdminService"),
        edge_grpc=("envoy.service.auth.v3.Authorization",),
    ),
    Service(
        "rec_svc",
        port=50055,
        internal_port=50065,
        calls=("catalog_svc", "auth_svc"),
        metrics_port=9115,
        addr_env="REC_ADDR",
        schema="rec",
        public_grpc=("spotify.rec.v1.RecommendationService",),
    ),
    Service("media_svc", port=8090, metrics_port=9116, addr_env="MEDIA_ADDR", grpc=False),
)

BY_NAME: dict[str, Service] = {service.name: service for service in SERVICES}
# The gRPC services, in registry order (their default ports' order).
GRPC_SERVICES: tuple[str, ...] = tuple(service.name for service in SERVICES if service.grpc)
# Every process the launcher starts, gRPC services first.
PROCESSES: tuple[str, ...] = tuple(service.name for service in SERVICES)
MEDIA = BY_NAME["media_svc"]
DEFAULT_PORTS: dict[str, int] = {service.name: service.port for service in SERVICES}
METRICS_PORTS: dict[str, int] = {service.name: service.metrics_port for service in SERVICES}
INTERNAL_PORTS: dict[str, int] = {
    service.name: service.internal_port for service in SERVICES if service.internal_port is not None
}
# Every gRPC service Envoy routes (the public ones of every process).
ROUTED_GRPC: frozenset[str] = frozenset(name for service in SERVICES for name in service.public_grpc)
# Batch jobs call services too (rec's batch: catalog's reads, rec's ReloadIndexes).
JOB_CALLS: dict[str, tuple[str, ...]] = {"rec-batch": ("catalog_svc", "rec_svc")}
SCHEMAS: dict[str, str] = {service.name: service.schema for service in SERVICES if service.schema}

# The exceptions to the derived edge policy (see the module docstring), by gRPC path.
ANONYMOUS_RPCS: frozenset[str] = frozenset(
    {
        "/spotify.auth.v1.AuthService/Register",
        "/spotify.auth.v1.AuthService/Login",
        # A signed URL is its own credential (like a media URL): a download manager has no session.
        "/spotify.auth.v1.AuthService/DownloadDataExport",
    }
)
# Public without a JSON form: the client-streaming upload, and the typed multi-gets whose JSON
# form is GetSeveral* (with Spotify's nulls).
GRPC_ONLY_RPCS: frozenset[str] = frozenset(
    f"/spotify.catalog.v1.CatalogService/{name}"
    for name in (
        "IngestTrackAudio",
        "BatchGetTracks",
        "BatchGetAlbums",
        "BatchGetArtists",
        "BatchGetAudioFeatures",
    )
)


# Method-name prefixes of the read-only RPCs (AIP naming): Envoy retries them, and a session
# cookie may call them from any page (they change nothing, and CORS keeps their answers private).
READ_PREFIXES: tuple[str, ...] = ("Get", "List", "BatchGet", "Search", "Check")


def is_read_only(path: str) -> bool:
    """Whether the RPC at `path` (`/pkg.Service/Method`, a query string ignored) only reads."""
    return path.partition("?")[0].rpartition("/")[2].startswith(READ_PREFIXES)


def get(name: str) -> Service:
    """The registry entry of `name`, with the known names in the error."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None


def edge_policy(path: str, has_http_rule: bool) -> EdgePolicy:
    """How Envoy exposes the RPC at `path` (`/pkg.Service/Method`) of a routed service."""
    if path in ANONYMOUS_RPCS:
        return EdgePolicy.ANONYMOUS
    if has_http_rule:
        return EdgePolicy.AUTHENTICATED
    if path in GRPC_ONLY_RPCS:
        return EdgePolicy.GRPC_ONLY
    return EdgePolicy.INTERNAL


def owner_of(grpc_service: str) -> Service:
    """The process that serves a fully-qualified gRPC service."""
    for service in SERVICES:
        if grpc_service in service.public_grpc or grpc_service in service.edge_grpc:
            return service
    raise ValueError(f"no process serves {grpc_service!r}")


def with_schema() -> Iterator[Service]:
    """The services that own a PostgreSQL schema, in registry order."""
    return (service for service in SERVICES if service.schema)
