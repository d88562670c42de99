"""The rate limiter's counters in Redis: a sliding-window log per (category, subject).

Each (category, subject) is a sorted set of request timestamps. One Lua script drops entries
older than the window, counts, and admits the request only if it fits, so concurrent requests
(and several auth_svc replicas) can never over-admit; Redis's own clock stamps the entries, so
replicas need not agree on the time. Refused requests are not recorded: "5 per 15 minutes"
admits exactly 5, and a client that keeps hammering is free again once its oldest admitted
request leaves the window.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis.asyncio as redis

from auth_svc.limits import Category

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


@dataclass(frozen=True)
class Decision:
    """One request counted against one category's window for one subject."""

    category: Category
    allowed: bool
    remaining: int
    reset_s: int  # seconds until the oldest counted request leaves the window

    @property
    def limit(self) -> int:
        return self.category.limit


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
            category=category,
            allowed=bool(allowed),
            remaining=max(category.limit - int(count), 0),
            reset_s=max(math.ceil(int(reset_ms) / 1000), 1),
        )
