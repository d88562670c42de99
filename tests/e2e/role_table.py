"""Who may do what through the edge: every public route x caller -> the answer it must get.

Derived, not recorded: the routes are the contracts' `google.api.http` rules (every binding) and
the public gRPC methods, how Envoy exposes each comes from the registry's edge policy
(`meshkit.services.edge_policy`), and what a signed-in caller may do comes from the product's role
rules, written once below (`RULES`) in the terms the product states them:

- roles are user, premium, artist and admin;
- premium-only features: offline downloads (320 kbps is a quality cap, not a refusal);
- artists edit only the catalog items of the artists they manage, and take down and restore their
  tracks and albums; admins edit, take down and restore any, and list what is down;
- admins manage users and the audit log (and see every artist's royalties);
- a user's own things (their playlists, library, player, devices) are theirs alone: nobody else,
  admins included, edits them, and private ones do not exist for others (404, not 403).

A caller without the role an RPC needs gets 403; one with the role but not entitled to the item
gets 403, or 404 when the item is private to its owner. Any public RPC the rules do not name is
open to every signed-in user, so a new RPC that needs more must be added here, or the walk fails.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.api import annotations_pb2, http_pb2

from meshctl import envoy_config
from meshkit import services
from meshkit.services import EdgePolicy


class Caller(enum.Enum):
    """The columns of the table."""

    ANONYMOUS = "anonymous"
    FREE = "free"
    PREMIUM = "premium"
    # The artist account that manages the catalog items (and owns the other items) under test.
    OWNER = "artist owning the item"
    OTHER_ARTIST = "another artist"
    ADMIN = "admin"


ROLES: dict[Caller, frozenset[str]] = {
    Caller.ANONYMOUS: frozenset(),
    Caller.FREE: frozenset({"user"}),
    Caller.PREMIUM: frozenset({"user", "premium"}),
    Caller.OWNER: frozenset({"user", "artist"}),
    Caller.OTHER_ARTIST: frozenset({"user", "artist"}),
    Caller.ADMIN: frozenset({"user", "admin"}),
}


@dataclass(frozen=True)
class Rule:
    """What a call needs beyond a session."""

    # One of these roles (empty: any signed-in user).
    roles: frozenset[str] = frozenset()
    # The caller the call's item belongs to, when the call acts on one item that is not the
    # caller's own.
    owner: Caller | None = None
    # Admins may act on the item too (catalog management), not only its owner.
    admin_too: bool = False
    # The item is private to its owner: others are told it does not exist.
    private: bool = False


SIGNED_IN = Rule()
ADMIN = Rule(roles=frozenset({"admin"}))
PREMIUM = Rule(roles=frozenset({"premium"}))
# A catalog item of the artist the OWNER manages.
MANAGED = Rule(roles=frozenset({"artist", "admin"}), owner=Caller.OWNER, admin_too=True)
# Something of the OWNER's own (a playlist), visible to everyone.
OWNERS = Rule(owner=Caller.OWNER)

_CATALOG = "/spotify.catalog.v1.CatalogService/"
_LIBRARY = "/spotify.library.v1.LibraryService/"
_PLAYBACK = "/spotify.playback.v1.PlaybackService/"

# Rules by RPC; a route (one HTTP binding, "METHOD /template") may differ from its RPC's rule.
RULES: dict[str, Rule] = {
    # A new artist has no manager yet: only admins create one.
    f"{_CATALOG}CreateArtist": ADMIN,
    **{
        f"{_CATALOG}{name}": MANAGED
        for name in (
            "UpdateArtist",
            "CreateAlbum",
            "UpdateAlbum",
            "CreateTrack",
            "UpdateTrack",
            "IngestTrackAudio",
            # The walk's item is a track: artists may not take down an artist as a whole.
            "TakeDownContent",
            "RestoreContent",
        )
    },
    # What is taken down, with who took it down and why, is the admins' moderation view.
    f"{_CATALOG}ListTakedowns": ADMIN,
    # An ingest job is its submitter's (and admins'): other artists are told it does not exist.
    f"{_CATALOG}GetIngestJob": Rule(
        roles=frozenset({"artist", "admin"}), owner=Caller.OWNER, admin_too=True, private=True
    ),
    # The playlist under test is the OWNER's (public): only its owner edits it and shares it.
    **{
        f"{_LIBRARY}{name}": OWNERS
        for name in (
            "UpdatePlaylist",
            "AddPlaylistItems",
            "UpdatePlaylistItems",
            "RemovePlaylistItems",
            "AddPlaylistCollaborator",
            "RemovePlaylistCollaborator",
        )
    },
    # Royalties: every artist's share is the admins'; one artist's streams are its managers' too.
    f"{_PLAYBACK}GetRoyaltyReport": ADMIN,
    f"{_PLAYBACK}ListArtistDailyStreams": MANAGED,
    # Offline downloads are premium; the license under test is the PREMIUM caller's own.
    f"{_PLAYBACK}RegisterOfflineDevice": PREMIUM,
    f"{_PLAYBACK}CreateOfflineDownload": PREMIUM,
    f"{_PLAYBACK}RenewOfflineLicense": Rule(roles=frozenset({"premium"}), owner=Caller.PREMIUM, private=True),
    # A data export is its requester's: the one under test is the PREMIUM caller's.
    "/spotify.auth.v1.AuthService/GetDataExport": Rule(owner=Caller.PREMIUM, private=True),
    # Deleting frees a slot, which a user who is no longer premium may still do, on their own
    # licenses only.
    f"{_PLAYBACK}DeleteOfflineDownload": Rule(owner=Caller.PREMIUM, private=True),
}
ROUTE_RULES: dict[str, Rule] = {
    # A playlist for someone else: the user under test is the OWNER.
    "POST /v1/users/{user_id}/playlists": OWNERS,
}


def _admin_rules() -> dict[str, Rule]:
    """Admins manage users and the audit log: every AdminService RPC."""
    methods = envoy_config.rpc_methods(envoy_config.DEFAULT_DESCRIPTOR)
    return {f"/spotify.auth.v1.AdminService/{m.name}": ADMIN for m in methods["spotify.auth.v1.AdminService"]}


RULES.update(_admin_rules())


@dataclass(frozen=True)
class Outcome:
    """An answer as a JSON client and a gRPC client see it."""

    http: int
    grpc: grpc.StatusCode


OK = Outcome(200, grpc.StatusCode.OK)
UNAUTHENTICATED = Outcome(401, grpc.StatusCode.UNAUTHENTICATED)
FORBIDDEN = Outcome(403, grpc.StatusCode.PERMISSION_DENIED)
NOT_FOUND = Outcome(404, grpc.StatusCode.NOT_FOUND)


@dataclass(frozen=True)
class Route:
    """One way to call a public RPC from outside: a JSON binding, or native gRPC (http is None)."""

    rpc: str
    policy: EdgePolicy
    rule: Rule
    # The HTTP binding; None for the native gRPC route.
    http: http_pb2.HttpRule | None = None

    @property
    def verb(self) -> str:
        assert self.http is not None
        return self.http.WhichOneof("pattern") or ""

    @property
    def template(self) -> str:
        assert self.http is not None
        return str(getattr(self.http, self.verb))

    @property
    def name(self) -> str:
        if self.http is None:
            return f"gRPC {self.rpc}"
        return f"{self.verb.upper()} {self.template}"

    def expected(self, caller: Caller) -> Outcome:
        """The answer `caller` must get, from the edge policy and the role rules alone."""
        if self.policy is EdgePolicy.ANONYMOUS:
            return OK
        if caller is Caller.ANONYMOUS:
            return UNAUTHENTICATED
        roles, rule = ROLES[caller], self.rule
        if rule.roles and not roles & rule.roles:
            return FORBIDDEN
        if rule.owner is not None and caller is not rule.owner and not (rule.admin_too and "admin" in roles):
            return NOT_FOUND if rule.private else FORBIDDEN
        return OK


def _bindings(rule: http_pb2.HttpRule) -> list[http_pb2.HttpRule]:
    return [rule, *rule.additional_bindings]


def routes(descriptor: Path = envoy_config.DEFAULT_DESCRIPTOR) -> list[Route]:
    """Every public route: each HTTP binding of each public RPC, and each public RPC over gRPC."""
    methods = envoy_config.rpc_methods(descriptor)
    found: list[Route] = []
    for service in (s for svc in services.SERVICES for s in svc.public_grpc):
        for method in methods[service]:
            path = f"/{service}/{method.name}"
            has_rule = envoy_config.has_http_rule(method)
            policy = services.edge_policy(path, has_rule)
            if policy is EdgePolicy.INTERNAL:
                continue
            rule = RULES.get(path, SIGNED_IN)
            if has_rule:
                for binding in _bindings(method.options.Extensions[annotations_pb2.http]):
                    route = Route(path, policy, rule, binding)
                    found.append(Route(path, policy, ROUTE_RULES.get(route.name, rule), binding))
            found.append(Route(path, policy, rule))
    return found


def internal_rpcs(descriptor: Path = envoy_config.DEFAULT_DESCRIPTOR) -> list[str]:
    """Every RPC the registry keeps from the outside: the routed services' internal methods and
    every method of the services only Envoy calls (ext_authz, rate limits)."""
    methods = envoy_config.rpc_methods(descriptor)
    found = []
    for svc in services.SERVICES:
        for service in svc.public_grpc:
            for method in methods[service]:
                path = f"/{service}/{method.name}"
                if services.edge_policy(path, envoy_config.has_http_rule(method)) is EdgePolicy.INTERNAL:
                    found.append(path)
        for service in svc.edge_grpc:
            found += [f"/{service}/{method.name}" for method in methods[service]]
    return found
