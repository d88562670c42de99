"""The sliding-window rate limiter and ext_authz's use of it, against the real Redis."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import cast

import pytest
import redis.asyncio as aioredis
from envoyapi.envoy.config.core.v3 import base_pb2
from envoyapi.envoy.service.auth.v3 import external_auth_pb2
from google.rpc import code_pb2

from auth_svc.authz_servicer import NO_SESSION, SESSION_KEY, AuthorizationServicer
from auth_svc.limits import CLIENT_ADDRESS_HEADER, CONTEXT_KEY, Category, RateLimitTable
from auth_svc.ratelimit import RateLimiter
from auth_svc.ratelimit_store import SlidingWindow
from auth_svc.sessions import Sessions
from meshctl import datatier


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


@pytest.fixture
def window(client: aioredis.Redis) -> SlidingWindow:
    return SlidingWindow(client, f"rl-unit-{uuid.uuid4().hex[:8]}")


def category(limit: int = 5, window_s: int = 900, scope: str = "ip") -> Category:
    return Category(name="auth", limit=limit, window_s=window_s, scope=scope, methods=())


async def test_exactly_the_limit_is_admitted_and_refusals_are_not_counted(
    window: SlidingWindow, client: aioredis.Redis
) -> None:
    decisions = [await window.hit(category(), "10.0.0.1") for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0, 0]
    assert all(0 < d.reset_s <= 900 for d in decisions)
    ttl = await client.pttl(window.key(category(), "10.0.0.1"))
    assert 0 < ttl <= 900_000  # the set expires with the window: nothing lingers
    assert (await window.hit(category(), "10.0.0.2")).allowed  # each subject has its own window


async def test_concurrent_requests_never_over_admit(window: SlidingWindow) -> None:
    decisions = await asyncio.gather(*(window.hit(category(), "10.0.0.3") for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 5


async def test_a_slot_frees_when_the_oldest_request_leaves_the_window(
    window: SlidingWindow, client: aioredis.Redis
) -> None:
    short = category(limit=2, window_s=1)
    assert (await window.hit(short, "u")).allowed
    assert (await window.hit(short, "u")).allowed
    key = window.key(short, "u")
    ((_, oldest_ms),) = await client.zrange(key, 0, 0, withscores=True)
    refused = await window.hit(short, "u")
    assert not refused.allowed and refused.reset_s == 1
    deadline = time.monotonic() + 5
    while not (await window.hit(short, "u")).allowed:
        assert time.monotonic() < deadline, "the window never slid"
        await asyncio.sleep(0.05)
    # Admitted no sooner than a full window after the oldest request, by Redis's clock (the one the
    # limiter stamps entries with), whatever this machine's scheduler did meanwhile.
    ((_, admitted_ms),) = await client.zrange(key, -1, -1, withscores=True)
    assert admitted_ms - oldest_ms >= 1000


def check(category_name: str, address: str, *, grpc: bool = False) -> external_auth_pb2.CheckRequest:
    """Envoy's question for a login (no session needed) on a route of `category_name`."""
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.path = "/spotify.auth.v1.AuthService/Login"
    http.headers[CLIENT_ADDRESS_HEADER] = address
    http.headers["content-type"] = "application/grpc"
    if not grpc:
        http.headers["x-envoy-original-path"] = "/api/auth/login"
    request.attributes.context_extensions[SESSION_KEY] = NO_SESSION
    request.attributes.context_extensions[CONTEXT_KEY] = category_name
    return request


def authz(limiter: RateLimiter) -> AuthorizationServicer:
    # Login routes need no session: the session side is never asked.
    return AuthorizationServicer(cast(Sessions, None), limiter, "http://edge.test")


def headers_of(options: Iterable[base_pb2.HeaderValueOption]) -> dict[str, str]:
    return {option.header.key: option.header.value for option in options}


async def test_ext_authz_admits_the_limit_then_answers_429_with_retry_after(window: SlidingWindow) -> None:
    service = authz(
        RateLimiter(RateLimitTable(categories={"auth": category(limit=1)}), window, fail_open=True)
    )
    first = await service.Check(check("auth", "192.0.2.7"), None)
    assert first.status.code == code_pb2.OK
    added = headers_of(first.ok_response.response_headers_to_add)
    assert (added["x-ratelimit-limit"], added["x-ratelimit-remaining"]) == ("1", "0")
    assert 0 < int(added["x-ratelimit-reset"]) <= 900 and "retry-after" not in added

    second = await service.Check(check("auth", "192.0.2.7"), None)
    assert (second.status.code, second.denied_response.status.code) == (code_pb2.RESOURCE_EXHAUSTED, 429)
    refused = headers_of(second.denied_response.headers)
    assert 0 < int(refused["retry-after"]) <= 900 and refused["x-ratelimit-remaining"] == "0"
    assert json.loads(second.denied_response.body) == {
        "error": {"status": 429, "message": "API rate limit exceeded"}
    }
    # gRPC clients get RESOURCE_EXHAUSTED, which they do not retry at once (429 maps to UNAVAILABLE).
    native = await service.Check(check("auth", "192.0.2.7", grpc=True), None)
    assert headers_of(native.denied_response.headers)["grpc-status"] == str(code_pb2.RESOURCE_EXHAUSTED)
    # Another address has its own window; a route of no category, or an unknown one, is not counted.
    assert (await service.Check(check("auth", "192.0.2.8"), None)).status.code == code_pb2.OK
    for name in ("", "nope"):
        other = await service.Check(check(name, "192.0.2.7"), None)
        assert (other.status.code, list(other.ok_response.response_headers_to_add)) == (code_pb2.OK, [])


async def test_an_unreachable_redis_fails_open_or_closed_as_configured() -> None:
    dead = aioredis.Redis(port=datatier.free_port(), socket_connect_timeout=0.5, decode_responses=True)
    table = RateLimitTable(categories={"auth": category()})
    try:
        open_ = authz(RateLimiter(table, SlidingWindow(dead, "x"), fail_open=True))
        assert (await open_.Check(check("auth", "192.0.2.9"), None)).status.code == code_pb2.OK
        closed = authz(RateLimiter(table, SlidingWindow(dead, "x"), fail_open=False))
        answer = await closed.Check(check("auth", "192.0.2.9"), None)
        assert (answer.status.code, answer.denied_response.status.code) == (code_pb2.UNAVAILABLE, 503)
        assert headers_of(answer.denied_response.headers)["retry-after"] == "1"
    finally:
        await dead.aclose()


async def test_a_redis_that_does_not_answer_is_waited_for_no_longer_than_the_timeout() -> None:
    """A Redis that accepts the connection but never replies (a stalled server) must not hold the
    request until Envoy gives up on ext_authz: the fail mode decides within the limiter's timeout."""
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        stalled = aioredis.Redis(port=port, socket_timeout=30, decode_responses=True)
        limiter = RateLimiter(
            RateLimitTable(categories={"auth": category()}),
            SlidingWindow(stalled, "x"),
            fail_open=True,
            timeout_s=0.2,
        )
        started = time.monotonic()
        answer = await authz(limiter).Check(check("auth", "192.0.2.10"), None)
        assert answer.status.code == code_pb2.OK
        assert time.monotonic() - started < 2
        await stalled.aclose()
    finally:
        silent.close()
