"""Catalog cache evictions: how a takedown reaches other services' caches of catalog answers at once.

Library and playback keep catalog's answers for a while (meshkit.catalog_client: track objects,
audio-file lists). A change that must show at once, a takedown or its restore, is announced by
catalog_svc after its commit on one Redis pub/sub channel, as the base62 ids of the tracks whose
answers changed; every process that caches subscribes and drops those entries.

Pub/sub reaches only the subscribers connected at that moment, so a subscriber drops its whole
cache each time it (re)subscribes: whatever it may have missed while disconnected is read again.
While Redis itself is down nothing is announced, and the caches' TTLs are the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack

import redis.asyncio as redis
from redis.exceptions import RedisError

from meshkit.catalog_client import CatalogClient

log = logging.getLogger(__name__)

CHANNEL = "catalog:evict:v1"
# Between resubscription attempts while Redis is unreachable.
RETRY_S = 1.0


async def announce(client: redis.Redis, track_ids: Iterable[str]) -> None:
    """Tell every subscribed process to drop what it caches about these tracks.

    Best effort, after the change committed: a failure is logged, and the caches' TTLs bound
    how long the old answers live.
    """
    keys = list(dict.fromkeys(track_ids))
    if not keys:
        return
    try:
        await client.publish(CHANNEL, ",".join(keys))
    except (RedisError, OSError) as err:
        log.warning("catalog evictions not announced (%s); caches expire on their own", err)


class Subscriber:
    """Drops cached catalog answers as evictions arrive; a background task for the process's life."""

    def __init__(
        self, client: redis.Redis, forget: Callable[[list[str]], None], forget_all: Callable[[], None]
    ) -> None:
        self.client = client
        self.forget = forget
        self.forget_all = forget_all
        self._task: asyncio.Task[None] | None = None
        # Set once the first subscription is in place (tests wait on it).
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="catalog-evictions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as err:
                log.warning("catalog evictions: subscription lost (%s); resubscribing", err)
            await asyncio.sleep(RETRY_S)

    async def _listen(self) -> None:
        async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CHANNEL)
            self.forget_all()  # what arrived while unsubscribed is unknown: forget everything
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self.forget([key for key in str(message["data"]).split(",") if key])


def follow(client: redis.Redis, catalog: CatalogClient, stack: AsyncExitStack) -> Subscriber:
    """Keep `catalog`'s caches in step with catalog's announcements for as long as `stack` is open."""
    subscriber = Subscriber(client, catalog.forget, catalog.forget_all)
    subscriber.start()
    stack.push_async_callback(subscriber.stop)
    return subscriber
