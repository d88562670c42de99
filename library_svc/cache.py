"""A small in-process TTL + LRU cache for objects library_svc fetches from other services.

A page of 100 playlist items needs 100 track objects from catalog_svc; on a playlist that people
page through, the same tracks come back again and again. Keeping them in the process for a short
time takes two catalog calls off most page loads, and needs no shared cache to operate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries expire `ttl_s` after they were put; the least recently used go first when full."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The live entries among `keys` (expired ones are dropped on the way)."""
        now = self._clock()
        found: dict[K, V] = {}
        for key in keys:
            entry = self._data.get(key)
            if entry is None:
                continue
            if entry[0] <= now:
                del self._data[key]
                continue
            self._data.move_to_end(key)
            found[key] = entry[1]
        return found

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        if not self.enabled:
            return
        expires = self._clock() + self.ttl_s
        for key, value in items:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
