"""A small in-process TTL + LRU cache.

playback_svc reads mostly-immutable facts from catalog on hot paths (a track's artists and
duration for every counted stream, its audio files for every stream start). One process-local
map keeps those paths off the network without a shared cache to operate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries expire ``ttl_s`` after they were put; the least recently used go first when full."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, default: V | None = None) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return default
        expires, value = entry
        if expires <= self._clock():
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def put(self, key: K, value: V, ttl_s: float | None = None) -> None:
        self._data[key] = (self._clock() + (self.ttl_s if ttl_s is None else ttl_s), value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
