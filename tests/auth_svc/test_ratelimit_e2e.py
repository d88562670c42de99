"""Envoy's global rate limits, enforced by auth_svc's RateLimitService, through Envoy."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import httpx
import pytest
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from meshctl.mesh import Mesh

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]


def test_the_auth_limit_admits_exactly_5_logins_per_ip_then_429(envoy_client: Client) -> None:
    http = envoy_client()  # an address of its own: no other test spends this budget
    remaining = []
    for attempt in range(5):
        password = "demo-password" if attempt == 2 else "wrong-password"
        reply = http.post("/api/auth/login", json={"email": "demo@example.com", "password": password})
        assert reply.status_code == (200 if attempt == 2 else 401), reply.text
        assert reply.headers["x-ratelimit-limit"] == "5"
        remaining.append(int(reply.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    sixth = http.post("/api/auth/login", json={"email": "demo@example.com", "password": "demo-password"})
    assert sixth.status_code == 429
    assert sixth.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert 0 < int(sixth.headers["retry-after"]) <= 900
    assert sixth.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(sixth.headers["x-ratelimit-reset"]) <= 900
    assert "set-cookie" not in sixth.headers
    # Registration is in the same category; an x-forwarded-for from the client changes nothing.
    register = http.post(
        "/api/auth/register",
        json={"email": "limited@example.com", "password": "long-enough"},
        headers={"x-forwarded-for": "203.0.113.9"},
    )
    assert register.status_code == 429
    # Another address has its own budget.
    assert (
        envoy_client().post("/api/auth/login", json={"email": "x@example.com", "password": "y"}).status_code
        == 401
    )


def test_grpc_clients_over_a_limit_get_resource_exhausted(
    running_mesh: Mesh, envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    # Recommendations: 30 per minute per user. A fresh user spends them over JSON (the answer
    # itself does not matter: the limit is counted before the call is routed), then gRPC is refused.
    _, _, token = new_account()
    http = envoy_client()
    for _ in range(30):
        reply = http.get("/v1/recommendations", headers={"authorization": f"Bearer {token}"})
        assert reply.status_code != 429
    assert http.get("/v1/recommendations", headers={"authorization": f"Bearer {token}"}).status_code == 429
    with grpc.insecure_channel(running_mesh.grpc_target) as channel, pytest.raises(grpc.RpcError) as err:
        rec_pb2_grpc.RecommendationServiceStub(channel).GetRecommendations(
            rec_pb2.GetRecommendationsRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.details() == "API rate limit exceeded"
    trailers = dict(err.value.trailing_metadata())
    assert trailers["x-ratelimit-limit"] == "30"
    assert 0 < int(trailers["retry-after"]) <= 60


def test_user_scoped_categories_count_per_user(envoy_client: Client, admin_token: str) -> None:
    http = envoy_client()
    first = http.get("/api/admin/users", headers={"authorization": f"Bearer {admin_token}"})
    second = envoy_client().get("/api/admin/users", headers={"authorization": f"Bearer {admin_token}"})
    assert first.headers["x-ratelimit-limit"] == second.headers["x-ratelimit-limit"] == "1000"
    # Same user from another address: the same counter.
    assert int(second.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-remaining"])


def test_routes_outside_every_category_are_not_limited(envoy_client: Client, demo_token: str) -> None:
    reply = envoy_client().get("/v1/me", headers={"authorization": f"Bearer {demo_token}"})
    assert reply.status_code == 200
    assert "x-ratelimit-limit" not in reply.headers
