"""meshkit.evictions on real Redis, and the catalog client's caches under evictions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from spotify.catalog.v1 import catalog_pb2

from meshkit import evictions
from meshkit.catalog_client import CatalogClient
from meshkit.redis_client import create_redis
from meshkit.ttlcache import TTLCache


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    conn = create_redis(redis_url)
    yield conn
    await conn.aclose()


async def test_subscribers_drop_announced_tracks_and_everything_when_they_subscribe(
    client: redis.Redis,
) -> None:
    dropped: list[list[str]] = []
    resets: list[None] = []
    two_came = asyncio.Event()

    def drop(keys: list[str]) -> None:
        dropped.append(keys)
        if len(dropped) == 2:
            two_came.set()

    subscriber = evictions.Subscriber(client, drop, lambda: resets.append(None))
    subscriber.start()
    try:
        await asyncio.wait_for(subscriber.subscribed.wait(), 5)
        assert resets == [None]  # what it missed before is unknown: all forgotten
        await evictions.announce(client, ["a", "b", "a"])
        await evictions.announce(client, [])  # nothing to say: nothing published
        await evictions.announce(client, ["c"])
        await asyncio.wait_for(two_came.wait(), 5)
    finally:
        await subscriber.stop()
    assert dropped == [["a", "b"], ["c"]]


class _HeldStub:
    """BatchGetTracks that answers only when released: a read in flight across an eviction."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def BatchGetTracks(
        self, request: catalog_pb2.BatchGetTracksRequest
    ) -> catalog_pb2.BatchGetTracksResponse:
        self.started.set()
        await self.release.wait()
        return catalog_pb2.BatchGetTracksResponse(
            tracks=[catalog_pb2.Track(id=key) for key in request.ids.split(",")]
        )


async def test_an_answer_loaded_across_an_eviction_is_not_cached() -> None:
    catalog = CatalogClient(_NoChannel(), track_cache=TTLCache(10, 60))  # type: ignore[arg-type]
    stub = _HeldStub()
    catalog.stub = stub  # type: ignore[assignment]

    read = asyncio.create_task(catalog.tracks(["t1"]))
    await stub.started.wait()
    catalog.forget(["t1"])  # the takedown's announcement arrives while the old answer is on its way
    stub.release.set()
    assert list(await read) == ["t1"]  # the caller still gets its answer...
    assert catalog.track_cache.get("t1") is None  # ...but it is not kept for a whole TTL

    stub.started.clear()
    assert list(await catalog.tracks(["t1"])) == ["t1"]
    assert catalog.track_cache.get("t1") is not None  # no eviction this time: cached
    catalog.forget(["t1"])
    assert catalog.track_cache.get("t1") is None


class _NoChannel:
    """What CatalogClient builds its stub from, before the test swaps the stub: makes no calls."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None
