"""The edge's rate limits, enforced by auth_svc's ext_authz, through Envoy: every row of
auth_svc/ratelimits.toml, over JSON and over native gRPC, admits exactly its limit in the window
and then refuses (429 with retry-after; RESOURCE_EXHAUSTED), and a refused write stores nothing.

Each row and transport gets a subject no other test shares (a fresh account, or a fresh client
address for the per-IP row), so the count starts at zero; nothing waits for a window to pass.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from google.protobuf import message
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2
from spotify.playback.v1 import playback_pb2
from spotify.rec.v1 import rec_pb2

from auth_svc import limits
from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids
from tests.e2e.clients import bearer, bearer_metadata, grpc_channel_from, rpc_types
from tests.e2e.role_table import Route, routes
from tests.e2e.walk import json_request, recommendations_built

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]
TABLE = limits.load()
REFUSED = "API rate limit exceeded"
TRACK_URI = f"spotify:track:{demo.DEMO_TRACK_ID}"


@dataclass(frozen=True)
class Probe:
    """How to spend a row's budget and what its refused write must not store."""

    # The RPC counted N times (a cheap one), and the request for call `i`, with its answer.
    counted: str
    request: Callable[[int], message.Message]
    answers: Callable[[int], int]
    # The write sent as call N+1, and the check that it stored nothing (None: the row has no write).
    write: str | None = None
    write_request: Callable[[Subject], message.Message] | None = None


def _db(database_url: str, sql: str, **params: Any) -> int:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


_AUTH = "/spotify.auth.v1.AuthService/"
_FRESH_EMAIL = f"limited-{secrets.token_hex(4)}"

PROBES: dict[str, Probe] = {
    # Failed logins count like successful ones (brute force is what the row is for).
    "auth": Probe(
        f"{_AUTH}Login",
        lambda i: auth_pb2.LoginRequest(
            email="demo@example.com", password="demo-password" if i == 2 else "nope-nope"
        ),
        lambda i: 200 if i == 2 else 401,
        f"{_AUTH}Register",
        lambda who: auth_pb2.RegisterRequest(
            email=f"{_FRESH_EMAIL}-{uuid.uuid4().hex[:8]}@example.com", password="long-enough"
        ),
    ),
    "search": Probe(
        "/spotify.catalog.v1.CatalogService/Search",
        lambda i: catalog_pb2.SearchRequest(q="midnight", type="track", limit=1),
        lambda i: 200,
    ),
    "playback": Probe(
        "/spotify.playback.v1.PlaybackService/GetStreamUrl",
        lambda i: playback_pb2.GetStreamUrlRequest(track_id=demo.DEMO_TRACK_ID, quality="low"),
        lambda i: 200,
    ),
    "library_writes": Probe(
        "/spotify.library.v1.LibraryService/SaveLibraryItems",
        lambda i: library_pb2.SaveLibraryItemsRequest(uris=TRACK_URI),
        lambda i: 200,
        "/spotify.library.v1.LibraryService/CreatePlaylist",
        lambda who: library_pb2.CreatePlaylistRequest(name="over the limit"),
    ),
    "recommendations": Probe(
        "/spotify.rec.v1.RecommendationService/GetRecommendations",
        lambda i: rec_pb2.GetRecommendationsRequest(seed_genres="rock", limit=1),
        lambda i: 200,
    ),
    "admin": Probe(
        "/spotify.auth.v1.AdminService/ListUsers",
        lambda i: auth_pb2.ListUsersRequest(limit=1),
        lambda i: 200,
        "/spotify.auth.v1.AdminService/BanUser",
        lambda who: auth_pb2.BanUserRequest(user_id=who.victim, reason="over the limit"),
    ),
}


def _stored_by_refused_write(category: str, database_url: str, subject: Subject) -> int:
    """Rows the refused write would have made."""
    user_id = subject.user_id
    if category == "auth":
        return _db(database_url, "SELECT count(*) FROM auth.users WHERE email LIKE :e", e=f"{_FRESH_EMAIL}%")
    if category == "library_writes":
        return _db(
            database_url, "SELECT count(*) FROM library.playlists WHERE owner_id = :u", u=ids.decode(user_id)
        )
    if category == "admin":
        return _db(
            database_url,
            "SELECT count(*) FROM auth.users WHERE id = :u AND banned",
            u=ids.decode(subject.victim),
        ) + _db(
            database_url,
            "SELECT count(*) FROM auth.audit_logs WHERE action = 'user.ban' AND actor_id = :u",
            u=ids.decode(user_id),
        )
    raise AssertionError(f"no stored-nothing check for {category}")


def _json_route(rpc: str) -> Route:
    return next(r for r in routes() if r.rpc == rpc and r.http is not None)


def test_every_row_has_a_probe() -> None:
    assert set(PROBES) == set(TABLE.categories), "a rate-limit row without a probe here is untested"
    for name, probe in PROBES.items():
        category = TABLE.categories[name]
        assert probe.counted in category.methods, name
        assert probe.write is None or probe.write in category.methods, name
        writes = [
            m
            for m in category.methods
            if not m.rpartition("/")[2].startswith(("Get", "List", "Search", "Check"))
        ]
        assert (probe.write is None) == (not writes), f"{name} has writes: one must be the refused one"


@dataclass
class Subject:
    """Who spends a row's budget: a fresh user (token), or a fresh client address."""

    token: str | None
    user_id: str
    address: str | None
    # Whom the admin row's refused ban names.
    victim: str = ""


@pytest.fixture
def subject_for(
    running_mesh: Mesh, envoy_client: Client, new_account: NewAccount, admin_token: str
) -> Callable[[limits.Category], Subject]:
    def make(category: limits.Category) -> Subject:
        if category.scope == "ip":
            from tests.support import fresh_loopback_address

            return Subject(None, "", fresh_loopback_address())
        _, _, token = new_account(f"limited {category.name}")
        http = envoy_client()
        user_id = http.get("/v1/me", headers=bearer(token)).json()["id"]
        victim = ""
        if category.name == "admin":
            granted = http.put(
                f"/api/admin/users/{user_id}/roles",
                json={"roles": ["ROLE_USER", "ROLE_ADMIN"]},
                headers=bearer(admin_token),
            )
            assert granted.status_code == 200, granted.text
            victim = http.get("/v1/me", headers=bearer(new_account("victim")[2])).json()["id"]
        if category.name == "recommendations":
            recommendations_built(running_mesh)
        return Subject(token, user_id, None, victim)

    return make


def _spend(n: int, call: Callable[[int], tuple[int, dict[str, str]]]) -> list[dict[str, str]]:
    """Make calls 0..n-1 (four at a time: the limiter is atomic) and check each one's answer."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda i: call(i)[1], range(n)))


def _check_allowed(category: limits.Category, headers: list[dict[str, str]], started: float) -> None:
    elapsed = time.monotonic() - started
    assert elapsed < category.window_s, f"{category.limit} calls took {elapsed:.0f} s, longer than the window"
    assert {h["x-ratelimit-limit"] for h in headers} == {str(category.limit)}
    assert sorted(int(h["x-ratelimit-remaining"]) for h in headers) == list(range(category.limit))


@pytest.mark.parametrize("name", list(TABLE.categories))
def test_a_row_admits_exactly_its_limit_over_json_then_429(
    name: str, running_mesh: Mesh, envoy_client: Client, subject_for: Callable[[limits.Category], Subject]
) -> None:
    category, probe = TABLE.categories[name], PROBES[name]
    subject = subject_for(category)
    http = envoy_client(subject.address)
    auth = bearer(subject.token) if subject.token else {}
    counted = _json_route(probe.counted)

    def call(
        i: int, route: Route = counted, request: message.Message | None = None
    ) -> tuple[int, dict[str, str]]:
        method, path, query, body = json_request(route, request or probe.request(i))
        reply = http.request(method, path, params=query, json=body, headers=auth)
        if request is None:
            assert reply.status_code == probe.answers(i), (i, reply.text)
        http.cookies.clear()
        return reply.status_code, dict(reply.headers) | {"body": reply.text}

    started = time.monotonic()
    _check_allowed(category, _spend(category.limit, call), started)

    if probe.write is not None:
        assert probe.write_request is not None
        status, headers = call(0, _json_route(probe.write), probe.write_request(subject))
    else:
        status, headers = call(0, counted, probe.request(0))
    assert status == 429, headers["body"]
    assert headers["body"] == '{"error":{"status":429,"message":"API rate limit exceeded"}}'
    assert 0 < int(headers["retry-after"]) <= category.window_s
    assert headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(headers["x-ratelimit-reset"]) <= category.window_s
    assert "set-cookie" not in headers
    if probe.write is not None:
        assert _stored_by_refused_write(name, running_mesh.database_url, subject) == 0


@contextmanager
def _channel(mesh: Mesh, address: str | None) -> Iterator[grpc.Channel]:
    with grpc_channel_from(mesh.grpc_target, address) as channel:
        yield channel


@pytest.mark.parametrize("name", list(TABLE.categories))
def test_a_row_admits_exactly_its_limit_over_grpc_then_resource_exhausted(
    name: str, running_mesh: Mesh, subject_for: Callable[[limits.Category], Subject]
) -> None:
    category, probe = TABLE.categories[name], PROBES[name]
    subject = subject_for(category)
    metadata = bearer_metadata(subject.token) if subject.token else ()
    grpc_ok = {200: grpc.StatusCode.OK, 401: grpc.StatusCode.UNAUTHENTICATED}

    with _channel(running_mesh, subject.address) as channel:

        def unary(path: str) -> Any:
            request_type, response_type, _ = rpc_types(path)
            return channel.unary_unary(path, request_type.SerializeToString, response_type.FromString)

        counted = unary(probe.counted)

        def call(i: int) -> tuple[int, dict[str, str]]:
            try:
                _, outcome = counted.with_call(probe.request(i), metadata=metadata, timeout=15)
                code, initial = grpc.StatusCode.OK, outcome.initial_metadata()
            except grpc.RpcError as err:
                code, initial = err.code(), err.initial_metadata() or err.trailing_metadata()  # type: ignore[attr-defined]
            assert code == grpc_ok[probe.answers(i)], (i, code)
            return 0, {key: value for key, value in initial if isinstance(value, str)}

        started = time.monotonic()
        _check_allowed(category, _spend(category.limit, call), started)

        over = unary(probe.write) if probe.write else counted
        request = probe.write_request(subject) if probe.write_request else probe.request(0)
        with pytest.raises(grpc.RpcError) as err:
            over(request, metadata=metadata, timeout=15)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.details() == REFUSED
    trailers = {k: v for k, v in err.value.trailing_metadata() or () if isinstance(v, str)}  # type: ignore[attr-defined]
    assert trailers["x-ratelimit-limit"] == str(category.limit)
    assert 0 < int(trailers["retry-after"]) <= category.window_s
    if probe.write is not None:
        assert _stored_by_refused_write(name, running_mesh.database_url, subject) == 0


def test_json_and_grpc_spend_one_budget(
    running_mesh: Mesh, envoy_client: Client, new_account: NewAccount
) -> None:
    """Recommendations: 30 per minute per user, whichever way they are asked for."""
    _, _, token = new_account()
    recommendations_built(running_mesh)
    http = envoy_client()
    for _ in range(29):
        assert (
            http.get("/v1/recommendations?seed_genres=rock&limit=1", headers=bearer(token)).status_code == 200
        )
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        stub = channel.unary_unary(
            "/spotify.rec.v1.RecommendationService/GetRecommendations",
            rec_pb2.GetRecommendationsRequest.SerializeToString,
            rec_pb2.GetRecommendationsResponse.FromString,
        )
        stub(
            rec_pb2.GetRecommendationsRequest(seed_genres="rock", limit=1),
            metadata=bearer_metadata(token),
            timeout=10,
        )
    assert http.get("/v1/recommendations?seed_genres=rock&limit=1", headers=bearer(token)).status_code == 429


def test_user_scoped_rows_count_per_user_from_any_address(envoy_client: Client, admin_token: str) -> None:
    first = envoy_client().get("/api/admin/users", headers=bearer(admin_token))
    second = envoy_client().get("/api/admin/users", headers=bearer(admin_token))
    assert first.headers["x-ratelimit-limit"] == second.headers["x-ratelimit-limit"] == "1000"
    assert int(second.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-remaining"])


def test_the_ip_row_counts_per_address_and_ignores_x_forwarded_for(envoy_client: Client) -> None:
    http = envoy_client()
    for _ in range(5):
        assert (
            http.post("/api/auth/login", json={"email": "x@example.com", "password": "nope-nope"}).status_code
            == 401
        )
    forged = http.post(
        "/api/auth/login",
        json={"email": "x@example.com", "password": "nope-nope"},
        headers={"x-forwarded-for": "203.0.113.9"},
    )
    assert forged.status_code == 429
    assert (
        envoy_client()
        .post("/api/auth/login", json={"email": "x@example.com", "password": "nope-nope"})
        .status_code
        == 401
    )


def test_routes_outside_every_row_are_not_limited(envoy_client: Client, demo_token: str) -> None:
    reply = envoy_client().get("/v1/me", headers=bearer(demo_token))
    assert reply.status_code == 200
    assert "x-ratelimit-limit" not in reply.headers
