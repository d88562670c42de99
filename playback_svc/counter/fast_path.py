"""The counter's fast path: Redis remembers which sessions were counted, so a replayed or repeated
event skips the database. It is only ever a shortcut: keys are set after the database commit (a
crash never leaves Redis claiming a stream the database does not have), and an unreachable or
flushed Redis just sends the events to the database, whose unique key decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis.asyncio as redis

log = logging.getLogger(__name__)

FAST_PATH_PREFIX = "playback:counted:"
FAST_PATH_TTL_S = 86_400


class FastPath:
    """Counted session keys in Redis; ``None`` for no fast path at all."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.redis = client

    async def known(self, keys: set[str]) -> set[str]:
        """Keys Redis says are counted; an unreachable Redis just means no fast path this batch."""
        if self.redis is None or not keys:
            return set()
        ordered = list(keys)
        try:
            values = await self.redis.mget([FAST_PATH_PREFIX + key for key in ordered])
        except (redis.RedisError, OSError) as exc:
            log.warning("stream counter fast path unavailable: %s", exc)
            return set()
        return {key for key, value in zip(ordered, values, strict=True) if value is not None}

    async def remember(self, keys: Iterable[str]) -> None:
        """Mark keys counted (after the commit: the database already has them)."""
        if self.redis is None:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(FAST_PATH_PREFIX + key, "1", nx=True, ex=FAST_PATH_TTL_S)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("stream counter could not update the fast path: %s", exc)
