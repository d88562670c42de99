"""Runs the stream counter on :class:`meshkit.kafka.ConsumerLoop`, in playback_svc or on its own.

kafka-python's consumer lives on the loop's thread; the counter's work (SQLAlchemy async,
redis.asyncio, the catalog channel) lives on the asyncio loop. Each polled batch is handed to
the loop and the consumer thread waits for it, so offsets are committed only after the batch's
transaction committed. A failing batch (database, catalog down) is retried with backoff and never
skipped: its offsets stay uncommitted until it succeeds or the runner stops. A consumer thread
that dies (broker unreachable at start, say) is restarted by a supervisor task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit.kafka import ConsumerConfig, ConsumerLoop, Producer
from playback_svc.active import ActiveSessions
from playback_svc.catalog import CatalogClient
from playback_svc.counter.relay import OutboxRelay
from playback_svc.counter.service import StreamCounter

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 86  # what the test hook exits with, so a test can tell it from a real failure
_RESTART_DELAY_S = 2.0


class CounterStopping(Exception):
    """Raised on the consumer thread to abandon a batch (uncommitted) when the runner stops."""


class _SupervisedLoop(ConsumerLoop):
    """A ConsumerLoop that says when its thread has ended, for whatever reason."""

    def __init__(self, config: ConsumerConfig, handle: Callable[[list], None]) -> None:
        super().__init__(config, handle)
        self.exited = threading.Event()

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            self.exited.set()


def crash_after(commits: int) -> Callable[[int], None]:
    """Test hook: end the process without any clean-up right after the ``commits``-th DB commit."""

    def hook(done: int) -> None:
        if done >= commits:
            os.write(2, f"stream counter: crash hook after database commit {done}\n".encode())
            os._exit(CRASH_EXIT_CODE)

    return hook


class CounterRunner:
    """The consumer group, the bridge onto the event loop, and the outbox relay."""

    def __init__(
        self,
        counter: StreamCounter,
        relay: OutboxRelay | None,
        config: ConsumerConfig,
        *,
        max_retry_delay_s: float = 5.0,
    ) -> None:
        self.counter = counter
        self.relay = relay
        self.config = config
        self.max_retry_delay_s = max_retry_delay_s
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: _SupervisedLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.assigned = threading.Event()  # set once a consumer thread got partitions

    def start(self) -> None:
        """Start in the background (call on the event loop); returns at once, the group joins later."""
        self._loop = asyncio.get_running_loop()
        if self.relay is not None:
            relay = self.relay
            self.counter.after_counted = relay.wake
            self._tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
        self._tasks.append(asyncio.create_task(self._supervise(), name="stream-counter-supervisor"))

    async def stop(self) -> None:
        """Stop consuming (an in-flight batch finishes or is abandoned uncommitted), then the relay."""
        self._stopping.set()
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.stop)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            consumer = _SupervisedLoop(self.config, self._handle)
            self._consumer = consumer
            consumer.start()
            try:
                while not consumer.exited.is_set():
                    if consumer.assigned.is_set():
                        self.assigned.set()
                    await asyncio.sleep(0.25)
            except asyncio.CancelledError:
                consumer.stop(timeout=0)  # let the thread end on its own
                raise
            if self._stopping.is_set():
                return
            log.error("stream counter consumer ended unexpectedly; restarting in %.0fs", _RESTART_DELAY_S)
            await asyncio.sleep(_RESTART_DELAY_S)

    def _handle(self, records: list) -> None:
        """On the consumer thread: run the batch on the loop, retrying until it succeeds."""
        assert self._loop is not None
        delay = 0.2
        while True:
            future = asyncio.run_coroutine_threadsafe(self.counter.handle(records), self._loop)
            try:
                future.result()
                return
            except Exception:
                log.exception("stream counter batch failed; retrying in %.1fs", delay)
            if self._stopping.wait(delay):
                raise CounterStopping("stopping with a batch that did not complete; it will be replayed")
            delay = min(delay * 2, self.max_retry_delay_s)


def build_runner(
    *,
    bootstrap: str,
    group_id: str,
    topic: str,
    engine: AsyncEngine,
    redis_client: redis.Redis | None,
    catalog: CatalogClient,
    producer: Producer,
    max_records: int = 500,
    after_db_commit: Callable[[int], None] | None = None,
) -> CounterRunner:
    """The counter as playback_svc and the standalone process run it."""
    counter = StreamCounter(
        engine, redis_client, catalog, active=ActiveSessions(), after_db_commit=after_db_commit
    )
    config = ConsumerConfig(bootstrap=bootstrap, group_id=group_id, topics=(topic,), max_records=max_records)
    return CounterRunner(counter, OutboxRelay(engine, producer), config)
