"""The counter's batch handler: decode, fast path, catalog, one transaction, then side effects.

Order matters for exactly-once:

1. Redis is read (never written) before the transaction: a key found there was counted already,
   so its events skip the database. Nothing is marked before the commit, so a crash can never
   leave Redis claiming a stream the database does not have.
2. One PostgreSQL transaction writes the batch (:func:`.store.write_batch`); the unique
   idempotency key, not Redis, decides what is new.
3. After the commit: the test hook, then Redis ``SET NX EX 86400`` for the batch's keys, then the
   outbox relay is woken. The caller commits Kafka offsets once :meth:`StreamCounter.handle`
   returns, so a crash anywhere before that replays the batch into step 2's no-ops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from playback_svc.active import ActiveSessions
from playback_svc.catalog import CatalogClient
from playback_svc.counter.batch import candidates, decode, qualifying, scoped_key
from playback_svc.counter.store import Counted, write_batch
from playback_svc.metrics import (
    COUNTER_BATCH_SECONDS,
    COUNTER_EVENT_AGE_SECONDS,
    COUNTER_SKIPPED,
    STREAMS_COUNTED,
)

log = logging.getLogger(__name__)

FAST_PATH_PREFIX = "playback:counted:"
FAST_PATH_TTL_S = 86_400


@dataclass
class BatchOutcome:
    """What one batch did (tests and the benchmark read it; the log line carries it too)."""

    events: int = 0
    candidates: int = 0
    fast_path_hits: int = 0
    counted: list[Counted] = field(default_factory=list)


class StreamCounter:
    """Handles polled batches of ``playback.events.v1`` records; safe to call again with any of them."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis_client: redis.Redis | None,
        catalog: CatalogClient,
        *,
        active: ActiveSessions | None = None,
        after_db_commit: Callable[[int], None] | None = None,
        after_counted: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.redis = redis_client
        self.catalog = catalog
        self.active = active
        self.after_db_commit = after_db_commit
        self.after_counted = after_counted
        self.commits = 0

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
            known = await self._known_counted({scoped_key(e) for e in maybe})
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
                async with self.engine.begin() as conn:
                    outcome.counted = await write_batch(conn, qualified)
                self.commits += 1
                if self.after_db_commit is not None:
                    self.after_db_commit(self.commits)
                await self._remember(q.key for q in qualified)
                for counted in outcome.counted:
                    STREAMS_COUNTED.labels(counted.qualified.event.product or "free").inc()
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

    async def _known_counted(self, keys: set[str]) -> set[str]:
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

    async def _remember(self, keys: Iterable[str]) -> None:
        """Mark keys counted in Redis (after the commit: the database already has them)."""
        if self.redis is None:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(FAST_PATH_PREFIX + key, "1", nx=True, ex=FAST_PATH_TTL_S)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("stream counter could not update the fast path: %s", exc)
