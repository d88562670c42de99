"""Cross-site request forgery and CORS: a write that only the session cookie authenticates must come
from a page of an allowed origin; Bearer tokens and reads are unaffected; CORS lets only the
configured origins use credentials."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import grpc
import httpx
import pytest
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.library.v1 import library_pb2, library_pb2_grpc

from auth_svc import rules
from auth_svc.authz_servicer import CROSS_SITE, CROSS_SITE_SIGN_IN
from meshctl import envoy_config
from meshctl.mesh import Mesh
from tests.e2e.clients import bearer, bearer_metadata

Client = Callable[..., httpx.Client]
CONFIGURED = "http://localhost:3000"  # in envoy/targets/local.yaml
FOREIGN = "http://evil.example"
# A sibling site: same host, another port. SameSite=Lax sends the cookie along from there.
SIBLING = "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443/path?q=1", "https://app.example.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("null", ""),
        ("/relative", ""),
        ("ftp://files.example", ""),
        ("http://bad:port", ""),
    ],
)
def test_origins_are_compared_in_one_form(value: str, origin: str) -> None:
    assert rules.origin_of(value) == origin


def test_only_allowed_origins_may_write_with_the_cookie() -> None:
    allowed = rules.allowed_origins(["http://localhost:3000", "null", "*"], "http://127.0.0.1:8080/")
    assert allowed == {"http://localhost:3000", "http://127.0.0.1:8080"}
    assert not rules.cross_site("http://127.0.0.1:8080", allowed)  # the edge's own pages
    assert not rules.cross_site("http://localhost:3000/app/page", allowed)  # a Referer
    assert not rules.cross_site(None, allowed)  # no browser
    for page in ("http://evil.example", "http://localhost:3001", "https://localhost:3000", "null", ""):
        assert rules.cross_site(page, allowed), page


def test_the_render_refuses_origins_that_would_give_every_site_credentials() -> None:
    for bad in ("*", "https://*.example.com", "example.com", "https://app.example.com/"):
        with pytest.raises(ValueError, match="cors_origins"):
            envoy_config.build_context("local", {"cors_origins": [CONFIGURED, bad]})
    context = envoy_config.build_context("local")
    rendered = envoy_config.render("local")
    # The CORS origins and the origins auth_svc lets write with the cookie are one list.
    assert f'allowed_origins: "{" ".join(context["cors_origins"])}"' in rendered
    assert CONFIGURED in context["cors_origins"]


@pytest.fixture
def cookie_session(
    envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> tuple[httpx.Client, str]:
    """A client holding a fresh user's `session` cookie (as a browser would), and the token."""
    email, password, _ = new_account()
    browser = envoy_client()
    reply = browser.post("/api/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    assert browser.cookies.get("session")
    return browser, reply.json()["access_token"]


def _playlists(http: httpx.Client, token: str) -> list[str]:
    reply = http.get("/v1/me/playlists", headers=bearer(token), params={"limit": 50})
    assert reply.status_code == 200, reply.text
    return [p["name"] for p in reply.json()["items"]]


@pytest.mark.e2e
def test_a_cookie_write_from_a_foreign_page_is_refused_and_stores_nothing(
    running_mesh: Mesh, cookie_session: tuple[httpx.Client, str], envoy_client: Client
) -> None:
    browser, token = cookie_session
    forged = {"content-type": "application/json"}
    for page in (
        {"origin": FOREIGN},
        {"origin": SIBLING},
        {"origin": "null"},
        {"referer": f"{FOREIGN}/attack.html"},
    ):
        reply = browser.post("/v1/me/playlists", content=b'{"name":"forged"}', headers={**forged, **page})
        assert reply.status_code == 403, (page, reply.text)
        assert reply.json() == {"error": {"status": 403, "message": CROSS_SITE}}
    # What a cross-site form can send without a preflight (text/plain, a urlencoded or multipart
    # form) is not JSON: the edge refuses it before the session is even looked at.
    for form_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        reply = browser.post(
            "/v1/me/playlists",
            content=b'{"name":"forged"}',
            headers={"content-type": form_type, "origin": FOREIGN},
        )
        assert reply.status_code == 415, (form_type, reply.text)
    # Logging the user out from another site is refused too: the session still works.
    assert browser.post("/api/auth/logout", json={}, headers={"origin": FOREIGN}).status_code == 403
    assert _playlists(envoy_client(), token) == []

    # The same request from the edge's own pages, a configured origin, or a client that is not a
    # browser (no Origin, no Referer) goes through.
    for n, page in enumerate(
        ({"origin": running_mesh.envoy_url}, {"origin": CONFIGURED}, {"referer": f"{CONFIGURED}/x"}, {})
    ):
        reply = browser.post("/v1/me/playlists", json={"name": f"mine {n}"}, headers=page)
        assert reply.status_code == 200, (page, reply.text)
    assert sorted(_playlists(envoy_client(), token)) == ["mine 0", "mine 1", "mine 2", "mine 3"]


@pytest.mark.e2e
def test_sign_in_from_a_foreign_page_is_refused_and_opens_no_session(
    running_mesh: Mesh, envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    """Login forgery: a foreign page must not put the forger's session cookie in a visitor's
    browser (whatever the visitor then plays and saves would land in the forger's account)."""
    email, password, _ = new_account()
    credentials = {"email": email, "password": password}
    stranger = f"user-{secrets.token_hex(6)}@example.com"
    for page in ({"origin": FOREIGN}, {"origin": SIBLING}, {"origin": "null"}, {"referer": f"{FOREIGN}/x"}):
        browser = envoy_client()
        reply = browser.post("/api/auth/login", json=credentials, headers=page)
        assert reply.status_code == 403, (page, reply.text)
        assert reply.json() == {"error": {"status": 403, "message": CROSS_SITE_SIGN_IN}}
        assert "set-cookie" not in reply.headers
        registered = browser.post(
            "/api/auth/register", json={"email": stranger, "password": "pw-long-enough"}, headers=page
        )
        assert registered.status_code == 403, (page, registered.text)
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            auth_pb2_grpc.AuthServiceStub(channel).Login(
                auth_pb2.LoginRequest(**credentials), metadata=(("origin", FOREIGN),), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The edge's own pages, a configured origin and clients that are not browsers sign in.
    tokens = []
    for page in ({"origin": running_mesh.envoy_url}, {"origin": CONFIGURED}, {}):
        reply = envoy_client().post("/api/auth/login", json=credentials, headers=page)
        assert reply.status_code == 200, (page, reply.text)
        tokens.append(reply.json()["access_token"])
    # The refused attempts opened no session: the user has new_account's and these three.
    revoked = envoy_client().post("/api/auth/logout-everywhere", json={}, headers=bearer(tokens[0]))
    assert revoked.json() == {"revoked_sessions": 4}, revoked.text
    # And the refused registration created no account: the address is still free.
    fresh = envoy_client().post("/api/auth/register", json={"email": stranger, "password": "pw-long-enough"})
    assert fresh.status_code == 200, fresh.text


@pytest.mark.e2e
def test_a_bearer_token_writes_from_any_page_and_cookie_reads_are_not_checked(
    cookie_session: tuple[httpx.Client, str], envoy_client: Client
) -> None:
    browser, token = cookie_session
    api = envoy_client()  # no cookie
    reply = api.post(
        "/v1/me/playlists", json={"name": "from an app"}, headers={**bearer(token), "origin": FOREIGN}
    )
    assert reply.status_code == 200, reply.text
    me = browser.get("/v1/me", headers={"origin": FOREIGN})
    assert me.status_code == 200
    assert "access-control-allow-origin" not in me.headers  # the foreign page cannot read it
    assert _playlists(api, token) == ["from an app"]


@pytest.mark.e2e
def test_native_grpc_follows_the_same_rule(
    running_mesh: Mesh, cookie_session: tuple[httpx.Client, str], envoy_client: Client
) -> None:
    _, token = cookie_session
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        stub = library_pb2_grpc.LibraryServiceStub(channel)
        request = library_pb2.CreatePlaylistRequest(name="over grpc")
        with pytest.raises(grpc.RpcError) as err:
            stub.CreatePlaylist(
                request, metadata=(("cookie", f"session={token}"), ("origin", FOREIGN)), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details() == CROSS_SITE
        stub.CreatePlaylist(request, metadata=(*bearer_metadata(token), ("origin", FOREIGN)), timeout=5)
    assert _playlists(envoy_client(), token) == ["over grpc"]


@pytest.mark.e2e
def test_cors_allows_credentials_only_for_configured_origins(envoy_client: Client) -> None:
    http = envoy_client()
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = http.options("/v1/me/playlists", headers={**preflight, "origin": CONFIGURED})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CONFIGURED
    assert allowed.headers["access-control-allow-credentials"] == "true"
    for origin in (FOREIGN, SIBLING, "null"):
        # Envoy answers a refused preflight with its policy's other headers but no allow-origin,
        # which is what makes the browser refuse the call (with or without credentials).
        refused = http.options("/v1/me/playlists", headers={**preflight, "origin": origin})
        assert "access-control-allow-origin" not in refused.headers, origin
        answer = http.get("/v1/me", headers={"origin": origin})
        assert "access-control-allow-origin" not in answer.headers, origin
        assert "access-control-allow-credentials" not in answer.headers, origin
