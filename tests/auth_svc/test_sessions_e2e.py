"""Accounts and sessions through Envoy: register, login, cookie and bearer, logout, expiry, spoofing."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable

import grpc
import httpx
import pytest
import redis
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from devdata import demo
from meshctl.mesh import Mesh

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def session_key(token: str) -> str:
    """Where auth_svc keeps a session in Redis (the token's SHA-256, never the token itself)."""
    return "session:" + hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture(scope="module")
def redis_client(running_mesh: Mesh) -> redis.Redis:
    return redis.Redis.from_url(running_mesh.redis_url, decode_responses=True)


def test_register_login_me_logout_round_trip(envoy_client: Client) -> None:
    http = envoy_client()
    email = f"Round.Trip-{uuid.uuid4().hex[:8]}@Example.com"
    registered = http.post(
        "/api/auth/register",
        json={"email": f"  {email} ", "password": "correct horse", "display_name": "Round Trip"},
    )
    assert registered.status_code == 200, registered.text
    user = registered.json()["user"]
    assert (user["email"], user["product"], user["type"]) == (email.lower(), "free", "user")

    login = http.post("/api/auth/login", json={"email": email.upper(), "password": "correct horse"})
    assert login.status_code == 200, login.text
    body = login.json()
    token = body["access_token"]
    assert (body["token_type"], body["expires_in"], body["user"]["id"]) == ("Bearer", 14400, user["id"])
    assert len(token) >= 40
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"session={token};")
    assert {"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=14400"} <= {p.strip() for p in cookie.split(";")}
    assert "Secure" not in cookie  # AUTH_SESSION_COOKIE_SECURE is off for the local (plain HTTP) mesh

    me = http.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200
    profile = me.json()
    assert profile == {
        **profile,
        "id": user["id"],
        "email": email.lower(),
        "display_name": "Round Trip",
        "product": "free",
        "type": "user",
        "uri": f"spotify:user:{user['id']}",
        "followers": {"href": "", "total": 0},
    }
    assert profile["href"].endswith(f"/v1/users/{user['id']}")

    logout = http.post("/api/auth/logout", json={}, headers=bearer(token))
    assert logout.status_code == 200
    assert "Max-Age=0" in logout.headers["set-cookie"]
    after = http.get("/v1/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["error"]["status"] == 401


def test_the_session_cookie_works_like_the_bearer_token(
    envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    email, _, token = new_account()
    http = envoy_client()
    reply = http.get("/v1/me", headers={"cookie": f"theme=dark; session={token}; other=1"})
    assert reply.status_code == 200
    assert reply.json()["email"] == email
    assert http.get("/v1/me", headers={"cookie": "session=not-a-session"}).status_code == 401


def test_native_grpc_login_then_get_me_with_authorization_metadata(running_mesh: Mesh) -> None:
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        email = f"grpc-{uuid.uuid4().hex[:8]}@example.com"
        stub.Register(auth_pb2.RegisterRequest(email=email, password="grpc-password"), timeout=10)
        reply, call = stub.Login.with_call(
            auth_pb2.LoginRequest(email=email, password="grpc-password"), timeout=10
        )
        assert dict(call.initial_metadata())["set-cookie"].startswith(f"session={reply.access_token};")
        me = stub.GetMe(
            auth_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {reply.access_token}"),)
        )
        assert (me.email, me.product) == (email, "free")
        with pytest.raises(grpc.RpcError) as err:
            stub.GetMe(auth_pb2.GetMeRequest(), metadata=(("authorization", "Bearer forged"),), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_wrong_password_and_unknown_email_get_the_same_401(envoy_client: Client) -> None:
    http = envoy_client()
    wrong = http.post("/api/auth/login", json={"email": "demo@example.com", "password": "not-the-password"})
    unknown = http.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "not-the-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": {"status": 401, "message": "Invalid credentials"}}
    assert "set-cookie" not in wrong.headers


def test_an_expired_session_is_refused_and_use_slides_the_ttl(
    envoy_client: Client, new_account: Callable[..., tuple[str, str, str]], redis_client: redis.Redis
) -> None:
    _, _, token = new_account()
    http = envoy_client()
    key = session_key(token)
    assert 14000 < redis_client.ttl(key) <= 14400
    redis_client.expire(key, 100)
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200
    assert redis_client.ttl(key) > 14000  # the request pushed the expiry out again (sliding)

    redis_client.pexpire(key, 1)  # let Redis expire it, as it would after 4 h of inactivity
    deadline = time.monotonic() + 5
    while redis_client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not redis_client.exists(key)
    expired = http.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["error"]["status"] == 401


def test_spoofed_identity_headers_are_ignored(
    envoy_client: Client, free_token: str, running_mesh: Mesh
) -> None:
    admin_id = "0" * 22
    spoofed = {"x-user-id": demo.DEMO_USER_ID, "x-user-roles": "user,admin", "x-user-product": "premium"}
    http = envoy_client()
    me = http.get("/v1/me", headers={**spoofed, **bearer(free_token)})
    assert me.status_code == 200
    assert (me.json()["email"], me.json()["product"]) == ("free@example.com", "free")
    assert http.get("/api/admin/users", headers={**spoofed, **bearer(free_token)}).status_code == 403
    assert http.get("/v1/me", headers={**spoofed, "x-user-id": admin_id}).status_code == 401
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        admin = auth_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            admin.ListUsers(
                auth_pb2.ListUsersRequest(),
                metadata=(*spoofed.items(), ("authorization", f"Bearer {free_token}")),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_logout_everywhere_and_password_change_revoke_other_sessions(
    envoy_client: Client, login: Callable[[str, str], str], new_account: Callable[..., tuple[str, str, str]]
) -> None:
    email, password, first = new_account()
    second = login(email, password)
    http = envoy_client()
    changed = http.post(
        "/api/auth/password",
        json={"current_password": password, "new_password": "a-new-password"},
        headers=bearer(first),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"revoked_sessions": 1}
    assert http.get("/v1/me", headers=bearer(second)).status_code == 401
    assert http.get("/v1/me", headers=bearer(first)).status_code == 200
    assert (
        envoy_client().post("/api/auth/login", json={"email": email, "password": password}).status_code == 401
    )

    third = login(email, "a-new-password")
    everywhere = http.post("/api/auth/logout-everywhere", json={}, headers=bearer(third))
    assert everywhere.json() == {"revoked_sessions": 2}
    for token in (first, third):
        assert http.get("/v1/me", headers=bearer(token)).status_code == 401


def test_wrong_current_password_changes_nothing(
    envoy_client: Client, login: Callable[[str, str], str], new_account: Callable[..., tuple[str, str, str]]
) -> None:
    email, password, token = new_account()
    http = envoy_client()
    refused = http.post(
        "/api/auth/password",
        json={"current_password": "not-it-at-all", "new_password": "another-password"},
        headers=bearer(token),
    )
    assert refused.status_code == 403
    short = http.post(
        "/api/auth/password",
        json={"current_password": password, "new_password": "short"},
        headers=bearer(token),
    )
    assert short.status_code == 400
    assert "at least 8" in short.json()["error"]["message"]
    assert login(email, password)  # the old password still works


def test_an_account_cannot_grant_itself_premium_but_can_cancel_it(
    envoy_client: Client,
    new_account: Callable[..., tuple[str, str, str]],
    grant_premium: Callable[[str], str],
    admin_token: str,
    redis_client: redis.Redis,
) -> None:
    _, _, token = new_account()
    http = envoy_client()

    def subscribe(product: str) -> httpx.Response:
        return http.post("/api/auth/subscription", json={"product": product}, headers=bearer(token))

    refused = subscribe("premium")
    assert refused.status_code == 403, refused.text
    assert "billing" in refused.json()["error"]["message"]
    assert http.get("/v1/me", headers=bearer(token)).json()["product"] == "free"
    assert redis_client.hget(session_key(token), "product") == "free"
    assert subscribe("gold").status_code == 400
    assert subscribe("free").json()["user"]["product"] == "free"  # restating changes nothing

    user_id = grant_premium(token)
    # Envoy's x-user-product comes from the live session, which was rewritten in place.
    assert redis_client.hget(session_key(token), "product") == "premium"
    assert http.get("/v1/me", headers=bearer(token)).json()["product"] == "premium"
    assert subscribe("premium").json()["user"]["product"] == "premium"  # a retry of the grant's echo
    for _ in range(2):  # the cancel is idempotent
        cancelled = subscribe("free")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["user"]["product"] == "free"
    assert redis_client.hget(session_key(token), "product") == "free"

    events = http.get(
        "/api/admin/audit-logs", params={"actor_id": user_id}, headers=bearer(admin_token)
    ).json()["events"]
    changes = [(e["action"], e["details"]) for e in events if e["action"].startswith("subscription.")]
    assert changes == [("subscription.downgrade", {"before": "premium", "after": "free"})]


def test_change_email_needs_the_password_and_a_free_address(
    envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    _, password, token = new_account()
    other_email, _, _ = new_account()
    http = envoy_client()
    taken = http.post(
        "/api/auth/email",
        json={"new_email": other_email.upper(), "password": password},
        headers=bearer(token),
    )
    assert taken.status_code == 409
    wrong = http.post(
        "/api/auth/email", json={"new_email": "x@example.com", "password": "nope-nope"}, headers=bearer(token)
    )
    assert wrong.status_code == 403
    fresh = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    moved = http.post(
        "/api/auth/email", json={"new_email": fresh, "password": password}, headers=bearer(token)
    )
    assert moved.status_code == 200
    assert http.get("/v1/me", headers=bearer(token)).json()["email"] == fresh


def test_validate_session_resolves_a_token_to_its_user_and_refuses_a_forged_one(
    running_mesh: Mesh, demo_token: str
) -> None:
    """On the mesh network (auth_svc's own port); that Envoy never exposes it is checked with every
    other internal RPC in tests/e2e/test_internal_rpcs.py."""
    with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['auth_svc']}") as direct:
        stub = auth_pb2_grpc.AuthServiceStub(direct)
        session = stub.ValidateSession(auth_pb2.ValidateSessionRequest(token=demo_token), timeout=5)
        assert (session.user_id, session.product) == (demo.DEMO_USER_ID, "premium")
        assert auth_pb2.ROLE_PREMIUM in session.roles
        with pytest.raises(grpc.RpcError) as err:
            stub.ValidateSession(auth_pb2.ValidateSessionRequest(token="forged"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_cors_preflights_need_no_session_and_refusals_stay_readable(envoy_client: Client) -> None:
    origin = {"origin": "http://localhost:3000"}
    http = envoy_client()
    preflight = http.options(
        "/v1/me",
        headers={
            **origin,
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    # A browser's script can read the 401 (and the rate-limit headers) of a cross-origin call.
    refused = http.get("/v1/me", headers=origin)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-ratelimit-remaining" in refused.headers["access-control-expose-headers"]
