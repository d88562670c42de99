"""The asyncio Redis client every service shares (sessions, rate limits, idempotency, caches)."""

from __future__ import annotations

import redis.asyncio as redis

DEFAULT_MAX_CONNECTIONS = 64


def create_redis(redis_url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> redis.Redis:
    """A client returning str whose pool makes callers wait for a free connection instead of failing.

    redis-py's default async pool raises MaxConnectionsError once it is exhausted, which a burst
    of requests turns into 503s at the edge; a blocking pool queues them for up to two seconds.
    """
    pool = redis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=2.0,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)
