"""The asyncio Redis client every service shares (sessions, rate limits, idempotency, caches)."""

from __future__ import annotations

import redis.asyncio as redis


def create_redis(redis_url: str) -> redis.Redis:
    """A pooled client that returns str (all our keys and values are text)."""
    return redis.Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )
