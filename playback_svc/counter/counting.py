"""The counter's batch handler: decode, fast path, catalog, one transaction, then side effects.

Order matters for exactly-once:

1. Redis is read (never written) before the transaction: a key found there was counted already,
   so its events skip the database. Nothing is marked before the commit, so a crash can never
   leave Redis claiming a stream the database does not have.
2. One PostgreSQL transaction writes the batch (:meth:`.store.CounterStore.write_batch`); the
   unique idempotency key, not Redis, decides what is new.
3. After the commit: Redis ``SET NX EX 86400`` for the batch's keys, then the outbox relay is
   woken. The caller commits Kafka offsets once :meth:`StreamCounter.handle` returns, so a crash
   anywhere before that replays the batch into step 2's no-ops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from playback_svc.clients import Catalog
from playback_svc.counter.active import ActiveSessions
from playback_svc.counter.batch import Qualified, candidates, decode, qualifying, scoped_key
from playback_svc.counter.fast_path import FastPath
from playback_svc.counter.store import CounterStore
from playback_svc.metrics import (
    COUNTER_BATCH_SECONDS,
    COUNTER_EVENT_AGE_SECONDS,
    COUNTER_SKIPPED,
    STREAMS_COUNTED,
)

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """What one batch did."""

    events: int = 0
    candidates: int = 0
    fast_path_hits: int = 0
    counted: list[Qualified] = field(default_factory=list)


@dataclass(eq=False)
class StreamCounter:
    """Handles polled batches of ``playback.events.v1`` records; safe to call again with any of them.

    ``after_counted`` is called once a batch counted something (the relay's wake-up).
    """

    store: CounterStore
    fast_path: FastPath
    catalog: Catalog
    active: ActiveSessions | None = None
    after_counted: Callable[[], None] | None = field(init=False, default=None)

    async def handle(self, records: Sequence[object]) -> BatchOutcome:
        started = time.perf_counter()
        outcome = BatchOutcome(events=len(records))
        self._observe_age(records)
        events = decode(records)
        if self.active is not None:
            self.active.observe(events)
        maybe = candidates(events)
        outcome.candidates = len(maybe)
        if maybe:
            known = await self.fast_path.known({scoped_key(e) for e in maybe})
            outcome.fast_path_hits = len(known)
            maybe = [e for e in maybe if scoped_key(e) not in known]
        if maybe:
            tracks = await self.catalog.tracks(e.track_id for e in maybe)
            unknown = {e.track_id for e in maybe} - tracks.keys()
            if unknown:
                COUNTER_SKIPPED.labels("unknown_track").inc(len(unknown))
                log.info("not counting plays of tracks catalog does not know", extra={"tracks": len(unknown)})
            qualified = qualifying(maybe, tracks)
            if qualified:
                written = await self.store.write_batch(qualified)
                outcome.counted = written.counted
                if written.erased:  # an erased user's keys are not remembered either
                    kept = [q for q in qualified if q.user_id not in written.erased]
                    COUNTER_SKIPPED.labels("erased_user").inc(len(qualified) - len(kept))
                    qualified = kept
                await self.fast_path.remember(q.key for q in qualified)
                for counted in outcome.counted:
                    STREAMS_COUNTED.labels(counted.event.product or "free").inc()
                    log.info(
                        "stream counted for royalties",
                        extra={
                            "user_id": counted.event.user_id,
                            "track_id": counted.event.track_id,
                            "event": "stream_counted",
                            "position": counted.event.position_ms // 1000,
                            "event_id": counted.event.event_id,
                        },
                    )
                if outcome.counted and self.after_counted is not None:
                    self.after_counted()
        COUNTER_BATCH_SECONDS.observe(time.perf_counter() - started)
        return outcome

    @staticmethod
    def _observe_age(records: Iterable[object]) -> None:
        now_ms = time.time() * 1000
        for record in records:
            timestamp = getattr(record, "timestamp", None)
            if isinstance(timestamp, int) and timestamp > 0:
                COUNTER_EVENT_AGE_SECONDS.observe(max(0.0, now_ms - timestamp) / 1000)
