"""The rate-limit table and the Envoy routes rendered from it and from the contracts (no I/O but files)."""

from __future__ import annotations

import pytest

from auth_svc import limits
from meshctl import envoy_config
from meshkit.config import PROJECT_ROOT

TOML = """
domain = "spotify"
[categories.auth]
limit = 5
window_s = 900
scope = "ip"
methods = ["/spotify.auth.v1.AuthService/Login"]
"""


def test_the_table_is_the_seeds() -> None:
    table = limits.load()
    seen = {n: (c.limit, c.window_s, c.scope) for n, c in table.categories.items()}
    assert seen == {
        "auth": (5, 900, "ip"),
        "search": (60, 60, "user"),
        "playback": (300, 60, "user"),
        "library_writes": (100, 60, "user"),
        "recommendations": (30, 60, "user"),
        "admin": (1000, 60, "user"),
    }
    assert table.category_of("/spotify.catalog.v1.CatalogService/Search").name == "search"
    assert table.category_of("/spotify.auth.v1.AuthService/GetMe") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('scope = "ip"', 'scope = "planet"'), "scope must be one of"),
        (("limit = 5", "limit = 0"), "must be positive"),
        (('"/spotify.auth.v1.AuthService/Login"', '"Login"'), "/pkg.Service/Method"),
        (("window_s = 900\n", ""), "needs limit, window_s, scope"),
    ],
)
def test_a_broken_table_is_refused(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        limits.parse(TOML.replace(*change))


def test_a_method_belongs_to_one_category_only() -> None:
    twice = TOML + TOML.replace("categories.auth", "categories.again")
    with pytest.raises(ValueError, match="is in rate-limit categories"):
        limits.parse(twice)


def test_routes_follow_the_contracts_and_the_table() -> None:
    context = envoy_config.build_context("local")
    routes = {r["path"]: r for r in context["rpc_routes"]}
    assert {p for p, r in routes.items() if r["anonymous"]} == {
        "/spotify.auth.v1.AuthService/Register",
        "/spotify.auth.v1.AuthService/Login",
        "/spotify.auth.v1.AuthService/DownloadDataExport",  # a signed URL is its own credential
    }
    assert routes["/spotify.auth.v1.AuthService/Login"]["ratelimit"] == "auth"
    assert routes["/spotify.catalog.v1.CatalogService/Search"]["ratelimit"] == "search"
    assert routes["/spotify.auth.v1.AuthService/GetMe"]["ratelimit"] is None
    assert routes["/spotify.auth.v1.AuthService/GetMe"]["retry"] is True
    assert routes["/spotify.auth.v1.AuthService/Logout"]["retry"] is False
    # gRPC-only public RPCs keep their route; methods without an HTTP rule are internal (404).
    assert routes["/spotify.catalog.v1.CatalogService/IngestTrackAudio"]["timeout"] == "300s"
    assert set(context["internal_rpcs"]) >= {
        "/spotify.auth.v1.AuthService/ValidateSession",
        "/spotify.auth.v1.AuthService/RecordAuditEvent",
        "/spotify.catalog.v1.CatalogService/ListTrackAudioFiles",
        "/spotify.rec.v1.RecommendationService/ReloadIndexes",
    }
    assert not set(context["internal_rpcs"]) & set(routes)


def test_ext_authz_runs_after_the_transcoder_and_identity_headers_go_first() -> None:
    rendered = envoy_config.render("local")
    order = [
        rendered.index(f"- name: envoy.filters.http.{name}\n")
        for name in ("cors", "lua", "header_mutation", "grpc_json_transcoder", "ext_authz", "router")
    ]
    assert order == sorted(order)
    assert "failure_mode_allow: false" in rendered
    # The rate limit is decided by ext_authz: no second call out per request.
    assert "envoy.filters.http.ratelimit" not in rendered


def test_limited_routes_name_their_category_and_the_client_address_is_envoys() -> None:
    rendered = envoy_config.render("local")
    login = rendered[rendered.index('- name: "/spotify.auth.v1.AuthService/Login"') :]
    login = login[: login.index("- name:", 10)]
    assert 'session: "none"' in login and 'ratelimit: "auth"' in login
    search = rendered[rendered.index('- name: "/spotify.catalog.v1.CatalogService/Search"') :]
    search = search[: search.index("- name:", 10)]
    assert 'ratelimit: "search"' in search and "session:" not in search
    # Set from the address Envoy trusts, replacing whatever a client sent, and passed to ext_authz.
    assert (
        '- append:\n                    header: { key: "x-mesh-client-address", value: '
        '"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" }\n'
        "                    append_action: OVERWRITE_IF_EXISTS_OR_ADD"
    ) in rendered
    assert "- exact: x-mesh-client-address" in rendered


def test_the_committed_k8s_render_is_current() -> None:
    committed = (PROJECT_ROOT / "k8s" / "base" / "envoy" / "envoy.yaml").read_text()
    assert committed == envoy_config.render("k8s"), (
        "re-render: python -m meshctl.envoy_config render --target k8s --out k8s/base/envoy/envoy.yaml"
    )


def test_circuit_breakers_shed_past_a_limit_per_replica() -> None:
    two = envoy_config.build_context("local", overrides={"ports": {"catalog_svc": [50051, 50071]}})
    limits = {u["cluster"]: u["max_requests"] for u in two["grpc_upstreams"]}
    assert limits["catalog_svc"] == 64 and limits["auth_svc"] == 32
    rendered = envoy_config.render("local")
    assert rendered.count("max_requests: 32\n") == len(limits)
    # k8s discovers pods through DNS: its limit is set per cluster.
    k8s = envoy_config.build_context("k8s")
    assert {u["max_requests"] for u in k8s["grpc_upstreams"]} == {128}
    off = envoy_config.render("local", overrides={"max_requests_per_replica": 0})
    assert "circuit_breakers" not in off
    with pytest.raises(ValueError, match="must not be negative"):
        envoy_config.build_context("local", overrides={"max_requests_per_replica": -1})
