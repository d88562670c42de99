"""The sliding-window rate limiter and its RateLimitService, against the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from envoyapi.envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from envoyapi.envoy.service.ratelimit.v3 import rls_pb2

from auth_svc.limits import Category, RateLimitTable
from auth_svc.ratelimit import RateLimiter
from auth_svc.ratelimit_servicer import RateLimitServicer
from auth_svc.ratelimit_store import SlidingWindow
from meshctl import datatier

OK = rls_pb2.RateLimitResponse.OK
OVER_LIMIT = rls_pb2.RateLimitResponse.OVER_LIMIT


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


def request(*descriptors: dict[str, str], domain: str = "spotify") -> rls_pb2.RateLimitRequest:
    return rls_pb2.RateLimitRequest(
        domain=domain,
        descriptors=[
            ratelimit_pb2.RateLimitDescriptor(
                entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in d.items()]
            )
            for d in descriptors
        ],
    )


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


async def test_the_service_answers_envoy_with_headers_and_retry_after(window: SlidingWindow) -> None:
    table = RateLimitTable(domain="spotify", categories={"auth": category(limit=1)})
    service = RateLimitServicer(RateLimiter(table, window, fail_open=True))
    descriptor = {"category": "auth", "remote_address": "192.0.2.7"}
    first = await service.ShouldRateLimit(request(descriptor), None)
    assert first.overall_code == OK
    headers = {h.key: h.value for h in first.response_headers_to_add}
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("1", "0")
    assert "retry-after" not in headers
    second = await service.ShouldRateLimit(request(descriptor), None)
    assert second.overall_code == OVER_LIMIT
    assert second.statuses[0].code == OVER_LIMIT
    assert second.statuses[0].current_limit.requests_per_unit == 1
    headers = {h.key: h.value for h in second.response_headers_to_add}
    assert 0 < int(headers["retry-after"]) <= 900
    # Descriptors it has no limit for, and other domains, are let through untouched.
    other = await service.ShouldRateLimit(request({"category": "nope", "user": "x"}), None)
    assert (other.overall_code, list(other.response_headers_to_add)) == (OK, [])
    assert (await service.ShouldRateLimit(request(descriptor, domain="other"), None)).overall_code == OK


async def test_an_unreachable_redis_fails_open_or_closed_as_configured() -> None:
    dead = aioredis.Redis(port=datatier.free_port(), socket_connect_timeout=0.5, decode_responses=True)
    table = RateLimitTable(domain="spotify", categories={"auth": category()})
    descriptor = {"category": "auth", "remote_address": "192.0.2.8"}
    try:
        open_ = RateLimitServicer(RateLimiter(table, SlidingWindow(dead, "x"), fail_open=True))
        assert (await open_.ShouldRateLimit(request(descriptor), None)).overall_code == OK
        closed = RateLimitServicer(RateLimiter(table, SlidingWindow(dead, "x"), fail_open=False))
        assert (await closed.ShouldRateLimit(request(descriptor), None)).overall_code == OVER_LIMIT
    finally:
        await dead.aclose()
