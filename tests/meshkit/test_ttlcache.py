"""TTLCache.get_or_load: cached entries, one load of the misses, and no caching of what it lacks."""

from __future__ import annotations

from meshkit.ttlcache import TTLCache


async def test_only_misses_are_loaded_and_only_what_was_found_is_kept() -> None:
    cache: TTLCache[str, int] = TTLCache(max_entries=10, ttl_s=60)
    cache.put("a", 1)
    asked: list[list[str]] = []

    async def load(keys: list[str]) -> dict[str, int]:
        asked.append(keys)
        return {k: ord(k) for k in keys if k != "unknown"}

    assert await cache.get_or_load(["a", "b", "unknown", "b"], load) == {"a": 1, "b": ord("b")}
    assert asked == [["b", "unknown"]]
    assert await cache.get_or_load(["b", "unknown"], load) == {"b": ord("b")}
    assert asked == [["b", "unknown"], ["unknown"]]  # "b" came from the cache; "unknown" is asked again
    assert await cache.get_or_load(["a"], load) == {"a": 1}
    assert len(asked) == 2  # nothing missing: no load at all


async def test_a_disabled_cache_loads_every_time() -> None:
    cache: TTLCache[str, int] = TTLCache(max_entries=0, ttl_s=0)
    calls = 0

    async def load(keys: list[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return dict.fromkeys(keys, 7)

    for _ in range(2):
        assert await cache.get_or_load(["x"], load) == {"x": 7}
    assert calls == 2


def test_a_named_cache_counts_its_hits_and_misses() -> None:
    from prometheus_client import REGISTRY

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"cache_type": "test_named"}) or 0.0

    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(max_entries=10, ttl_s=5, clock=lambda: now[0], name="test_named")
    hits, misses = sample("cache_hits_total"), sample("cache_misses_total")
    cache.put("a", 1)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1}
    now[0] = 6.0  # expired: a miss
    assert cache.get("a") is None
    assert (sample("cache_hits_total") - hits, sample("cache_misses_total") - misses) == (1, 3)
    unnamed: TTLCache[str, int] = TTLCache(max_entries=10, ttl_s=5)
    unnamed.get("a")
    assert sample("cache_misses_total") - misses == 3
