"""A small in-process TTL + LRU cache for facts a service reads from another service.

Catalog objects change rarely and are read on hot paths (every playlist page, every counted
stream, every stream start); a process-local map with a short TTL keeps those paths off the
network without a shared cache to operate. A cache with `ttl_s` or `max_entries` of 0 stores nothing.
A named cache counts its hits and misses in `cache_hits_total` / `cache_misses_total` under
`cache_type=<name>` (the dashboards' cache hit ratio); an unnamed one (a test's) is not measured.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from meshkit.metrics import CACHE_HITS, CACHE_MISSES

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries expire `ttl_s` after they were put; the least recently used go first when full."""

    def __init__(
        self,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.name = name
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        # Bound once: a labelled child per call would cost a dict lookup and a lock each time.
        measured = name is not None and self.enabled
        self._hits = CACHE_HITS.labels(name) if measured else None
        self._misses = CACHE_MISSES.labels(name) if measured else None

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def get(self, key: K, default: V | None = None) -> V | None:
        found = self.get_many([key])
        return found.get(key, default)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The live entries among `keys` (expired ones are dropped on the way)."""
        now = self._clock()
        found: dict[K, V] = {}
        asked = 0
        for key in keys:
            asked += 1
            entry = self._data.get(key)
            if entry is None:
                continue
            if entry[0] <= now:
                del self._data[key]
                continue
            self._data.move_to_end(key)
            found[key] = entry[1]
        if self._hits is not None and self._misses is not None:
            self._hits.inc(len(found))
            self._misses.inc(asked - len(found))
        return found

    async def get_or_load(
        self, keys: Iterable[K], load: Callable[[list[K]], Awaitable[dict[K, V]]]
    ) -> dict[K, V]:
        """The entries for `keys`: live cached ones, the rest from one `load` of the missing keys
        (whatever it returns is cached; keys it leaves out are not, so they are asked for again)."""
        wanted = list(dict.fromkeys(keys))
        found = self.get_many(wanted)
        missing = [k for k in wanted if k not in found]
        if missing:
            loaded = await load(missing)
            self.put_many(loaded.items())
            found.update(loaded)
        return found

    def put(self, key: K, value: V, ttl_s: float | None = None) -> None:
        """Store one entry; `ttl_s` overrides the cache's TTL for it."""
        self.put_many([(key, value)], ttl_s)

    def put_many(self, items: Iterable[tuple[K, V]], ttl_s: float | None = None) -> None:
        ttl = self.ttl_s if ttl_s is None else ttl_s
        if ttl <= 0 or self.max_entries <= 0:
            return
        expires = self._clock() + ttl
        for key, value in items:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def discard(self, keys: Iterable[K]) -> None:
        """Drop the entries of `keys` (those absent are fine)."""
        for key in keys:
            self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()
