"""The ``active_streams`` gauge: playback sessions with a start or progress event in the last minute.

Tracked by the stream counter, in-process, from the events it consumes: the topic is keyed by
user, so each counter replica sees a disjoint set of sessions and ``sum(active_streams)`` over
replicas is the mesh-wide figure without any shared state. A pause, complete or skip ends a
session at once; a client that just disappears ages out after ``window_s``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from prometheus_client import Gauge
from spotify.playback.v1 import playback_pb2

from meshkit.metrics import ACTIVE_STREAMS

_EventType = playback_pb2.PlaybackEvent.EventType
_KEEPS_ALIVE = frozenset({_EventType.EVENT_TYPE_START, _EventType.EVENT_TYPE_PROGRESS})
_ENDS = frozenset({_EventType.EVENT_TYPE_PAUSE, _EventType.EVENT_TYPE_COMPLETE, _EventType.EVENT_TYPE_SKIP})


class ActiveSessions:
    """Last-seen time per session key, oldest first; the gauge reads the live count on scrape."""

    def __init__(
        self,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        gauge: Gauge | None = ACTIVE_STREAMS,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()  # the exporter thread reads while the counter writes
        if gauge is not None:
            gauge.set_function(self.count)

    def observe(self, events: Iterable[playback_pb2.PlaybackEvent]) -> None:
        """Record events (by the server's receive time, so a client clock cannot keep one alive)."""
        now = self._clock()
        with self._lock:
            for event in events:
                key = f"{event.user_id}:{event.idempotency_key}"
                if event.event_type in _ENDS:
                    self._seen.pop(key, None)
                elif event.event_type in _KEEPS_ALIVE:
                    seen = event.received_at.seconds + event.received_at.nanos / 1e9 or now
                    if seen < now - self.window_s:
                        continue  # a replayed old event says nothing about now
                    self._seen[key] = max(seen, self._seen.get(key, 0.0))
                    self._seen.move_to_end(key)
            self._prune(now)

    def __contains__(self, key: object) -> bool:
        """Whether the session ``<user id>:<idempotency key>`` is live now."""
        with self._lock:
            self._prune(self._clock())
            return key in self._seen

    def count(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._seen)

    def _prune(self, now: float) -> None:
        # Keys are kept roughly in last-seen order (move_to_end on update), so expiry pops from
        # the front and stops at the first live one: O(expired), not O(sessions).
        horizon = now - self.window_s
        while self._seen:
            key, seen = next(iter(self._seen.items()))
            if seen >= horizon:
                break
            del self._seen[key]
