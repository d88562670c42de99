"""Envoy's global rate limit service (`envoy.service.ratelimit.v3.RateLimitService`) on Redis.

Each (category, subject) is a sliding-window log: a sorted set of request timestamps. One Lua
script drops entries older than the window, counts, and admits the request only if it fits, so
concurrent requests (and several auth_svc replicas) can never over-admit; Redis's own clock
stamps the entries, so replicas need not agree on the time. Refused requests are not recorded:
"5 per 15 minutes" admits exactly 5, and a client that keeps hammering is free again once its
oldest admitted request leaves the window.

The response carries `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds
until a slot frees) for every limited route, and `retry-after` when refused; Envoy adds them to
the response (or to its 429). Envoy's own x-ratelimit headers stay off: they derive the window
from a unit enum and cannot say "15 minutes".
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as redis
from envoyapi.envoy.config.core.v3 import base_pb2
from envoyapi.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from grpc import aio
from redis.exceptions import RedisError

from auth_svc.limits import CATEGORY_KEY, Category, RateLimitTable

log = logging.getLogger(__name__)

_SLIDING_WINDOW = """
local key = KEYS[1]
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hits = tonumber(ARGV[3])
local member = ARGV[4]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
local count = redis.call('ZCARD', key)
local allowed = 0
if count + hits <= limit then
  for i = 1, hits do
    redis.call('ZADD', key, now, member .. ':' .. i)
  end
  count = count + hits
  allowed = 1
end
local reset_ms = window_ms
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if #oldest == 2 then
  reset_ms = tonumber(oldest[2]) + window_ms - now
end
if count > 0 then
  redis.call('PEXPIRE', key, window_ms)
end
return {allowed, count, reset_ms}
"""

_UNITS = {
    1: rls_pb2.RateLimitResponse.RateLimit.SECOND,
    60: rls_pb2.RateLimitResponse.RateLimit.MINUTE,
    3600: rls_pb2.RateLimitResponse.RateLimit.HOUR,
    86400: rls_pb2.RateLimitResponse.RateLimit.DAY,
}
OK = rls_pb2.RateLimitResponse.OK
OVER_LIMIT = rls_pb2.RateLimitResponse.OVER_LIMIT


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the oldest counted request leaves the window


class SlidingWindow:
    """The Redis side: one atomic script call per (category, subject) and request."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.prefix = key_prefix
        self._script = client.register_script(_SLIDING_WINDOW)

    def key(self, category: Category, subject: str) -> str:
        return f"{self.prefix}:{category.name}:{subject}"

    async def hit(self, category: Category, subject: str, hits: int = 1) -> Decision:
        allowed, count, reset_ms = await self._script(
            keys=[self.key(category, subject)],
            args=[category.window_s * 1000, category.limit, hits, uuid.uuid4().hex],
        )
        return Decision(
            allowed=bool(allowed),
            limit=category.limit,
            remaining=max(category.limit - int(count), 0),
            reset_s=max(math.ceil(int(reset_ms) / 1000), 1),
        )


def _header(key: str, value: str) -> base_pb2.HeaderValue:
    return base_pb2.HeaderValue(key=key, value=value)


class RateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, table: RateLimitTable, window: SlidingWindow, *, fail_open: bool) -> None:
        self.table = table
        self.window = window
        self.fail_open = fail_open
        self._last_outage_log = 0.0

    async def ShouldRateLimit(
        self, request: rls_pb2.RateLimitRequest, context: aio.ServicerContext
    ) -> rls_pb2.RateLimitResponse:
        if request.domain != self.table.domain:
            log.warning("rate limit request for unknown domain", extra={"domain": request.domain})
            return rls_pb2.RateLimitResponse(overall_code=OK)
        hits = request.hits_addend or 1
        statuses: list[rls_pb2.RateLimitResponse.DescriptorStatus] = []
        decisions: list[Decision] = []
        try:
            for descriptor in request.descriptors:
                entries = {entry.key: entry.value for entry in descriptor.entries}
                category = self.table.categories.get(entries.get(CATEGORY_KEY, ""))
                subject = entries.get(category.subject_key, "") if category else ""
                if category is None or not subject:
                    statuses.append(rls_pb2.RateLimitResponse.DescriptorStatus(code=OK))
                    continue
                decision = await self.window.hit(category, subject, hits)
                decisions.append(decision)
                statuses.append(self._status(category, decision))
        except RedisError as exc:
            return self._outage(exc)
        over = [d for d in decisions if not d.allowed]
        response = rls_pb2.RateLimitResponse(overall_code=OVER_LIMIT if over else OK, statuses=statuses)
        if decisions:
            # The binding limit: a refusing one, else the one closest to refusing.
            binding = min(over or decisions, key=lambda d: (d.remaining, -d.reset_s))
            response.response_headers_to_add.extend(
                [
                    _header("x-ratelimit-limit", str(binding.limit)),
                    _header("x-ratelimit-remaining", str(binding.remaining)),
                    _header("x-ratelimit-reset", str(binding.reset_s)),
                ]
            )
            if over:
                response.response_headers_to_add.append(_header("retry-after", str(binding.reset_s)))
        return response

    @staticmethod
    def _status(category: Category, decision: Decision) -> rls_pb2.RateLimitResponse.DescriptorStatus:
        return rls_pb2.RateLimitResponse.DescriptorStatus(
            code=OK if decision.allowed else OVER_LIMIT,
            current_limit=rls_pb2.RateLimitResponse.RateLimit(
                name=f"{category.name}:{category.limit}/{category.window_s}s",
                requests_per_unit=category.limit,
                unit=_UNITS.get(category.window_s, rls_pb2.RateLimitResponse.RateLimit.UNKNOWN),
            ),
            limit_remaining=decision.remaining,
            duration_until_reset=Duration(seconds=decision.reset_s),
        )

    def _outage(self, exc: RedisError) -> rls_pb2.RateLimitResponse:
        """Redis is unreachable: let traffic through (default) or refuse it, and say so in the log."""
        now = time.monotonic()
        if now - self._last_outage_log > 10:  # one line per 10 s, not one per request
            self._last_outage_log = now
            log.error(
                "rate limiter cannot reach Redis: failing %s",
                "open (allowing requests)" if self.fail_open else "closed (refusing requests)",
                extra={"error": str(exc)},
            )
        if self.fail_open:
            return rls_pb2.RateLimitResponse(overall_code=OK)
        return rls_pb2.RateLimitResponse(
            overall_code=OVER_LIMIT, response_headers_to_add=[_header("retry-after", "1")]
        )
