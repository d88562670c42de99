"""Kafka helpers on kafka-python 2.3 (the version that joins consumer groups on tansu and Kafka alike).

kafka-python is thread-based; the producer's futures are bridged onto asyncio so a
servicer can await the broker's acknowledgement, and consumers run on their own thread
with manual offset commits (the caller commits after its database transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from meshkit import topics as topics_registry
from meshkit.errors import Unavailable
from meshkit.metrics import KAFKA_CONSUMER_LAG
from meshkit.telemetry import consuming, in_current_context

log = logging.getLogger(__name__)

# Topics and their partition counts, from the registry (meshkit.topics).
TOPICS: dict[str, int] = {topic.name: topic.partitions for topic in topics_registry.ALL}
# The client id of the topic declarations (`ensure_topics`).
ADMIN_CLIENT_ID = "meshkit-admin"
# How long a producer's send() waits for the metadata of a topic it has none for.
METADATA_WAIT_MS = 3000
# How often a consumer re-reads the cluster's metadata (topics and their partitions).
METADATA_MAX_AGE_MS = 5000


def ensure_topics(bootstrap: str, topics: dict[str, int] | None = None) -> None:
    """Create the topics that are missing; existing ones are left as they are."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=ADMIN_CLIENT_ID)
    try:
        for name, partitions in (topics or TOPICS).items():
            # One at a time: an existing topic fails only its own request. (list_topics is no help:
            # kafka-python 2.3 cannot parse tansu's metadata ACL bits.)
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


class Producer:
    """Publishes protobuf messages; `publish` returns only once the broker acknowledged (acks=all).

    A broker that cannot be reached makes `publish` raise `Unavailable` within `timeout_s` (the
    caller's client may retry, with the same idempotency keys): kafka-python's `send` blocks while
    it waits for topic metadata, so it runs on a worker thread, never on the event loop, and the
    acknowledgements are awaited with a deadline. Topics are never created here: whoever starts
    the broker declares the registry's (see ConsumerLoop._await_topics), and a topic the broker
    lacks (a memory-only broker that just restarted) makes the publish `Unavailable` until then.
    """

    def __init__(
        self, bootstrap: str, *, client_id: str = "meshkit", linger_ms: int = 2, timeout_s: float = 8.0
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "retries": 5,
            "max_block_ms": METADATA_WAIT_MS,  # how long send() waits for an unknown topic's metadata
            "max_in_flight_requests_per_connection": 1,
            "allow_auto_create_topics": False,
            "key_serializer": lambda key: key.encode(),
        }
        self._producer = KafkaProducer(**self._config)
        # Set when a publish failed: the next one starts from a new client (see `_current`).
        self._stale = False
        self._lock = threading.Lock()

    async def publish(self, topic: str, key: str, message: Message) -> None:
        """Send one message and wait for the broker's acknowledgement."""
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, items: Iterable[tuple[str, Message]]) -> None:
        """Send a batch; raises the first broker error after every send has settled."""
        await self.publish_many_raw(topic, ((key, message.SerializeToString()) for key, message in items))

    async def publish_many_raw(self, topic: str, items: Iterable[tuple[str, bytes]]) -> None:
        """`publish_many` for payloads already serialised (an outbox's rows)."""
        batch = list(items)
        if not batch:
            return
        try:
            await asyncio.wait_for(self._publish(topic, batch), timeout=self.timeout_s)
        except TimeoutError:
            await asyncio.to_thread(self._retire)
            raise Unavailable(f"the event broker did not acknowledge within {self.timeout_s:.0f}s") from None
        except KafkaError as exc:
            await asyncio.to_thread(self._retire)
            raise Unavailable(f"the event broker is unavailable ({type(exc).__name__})") from exc

    def _retire(self) -> None:
        """After a failed publish: close the client at once, dropping what it still queues.

        Left open until the next publish, it delivered its queued batches the moment a restarted
        broker came back, beside the caller's retry of the same records from the new client; on
        the memory-only broker such a pair of writes was seen to leave a partition that hid the
        record from every consumer. The caller was told the publish failed, so nothing is lost.
        """
        with self._lock:
            self._stale = True
            stale = self._producer
        with contextlib.suppress(KafkaError):
            stale.close(timeout=0)

    async def _publish(self, topic: str, batch: list[tuple[str, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = [loop.create_future() for _ in batch]

        def settle(result: object, fut: asyncio.Future[None]) -> None:
            if isinstance(result, BaseException):
                loop.call_soon_threadsafe(_set_exception, fut, result)
            else:
                loop.call_soon_threadsafe(_set_result, fut)

        def send_all() -> None:
            producer = self._current()
            for (key, payload), done in zip(batch, waits, strict=True):
                sent = self._send(producer, topic, key, payload)
                sent.add_callback(settle, fut=done).add_errback(settle, fut=done)

        await asyncio.to_thread(send_all)
        results = await asyncio.gather(*waits, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _current(self) -> KafkaProducer:
        """The client to send with (on the worker thread): after a failed publish, a new one.

        kafka-python's client keeps batches for partitions the broker no longer has, and its
        metadata of them, after a broker restart; a fresh client starts from what the broker has
        now. The old one's unacknowledged messages are dropped: nobody was told they were
        published.
        """
        with self._lock:
            if self._stale:
                # The failed one was closed by `_retire`, its unsent messages dropped.
                self._producer = KafkaProducer(**self._config)
                self._stale = False
                log.warning("event broker client replaced after a failed publish")
            return self._producer

    def _send(self, producer: KafkaProducer, topic: str, key: str, payload: bytes) -> Any:
        """`send` (on the worker thread); a topic the broker lacks times out as a `KafkaError`."""
        try:
            return producer.send(topic, key=key, value=payload)
        except AssertionError as exc:  # kafka-python's word for a closed client
            # Another publish failed meanwhile and `_retire` closed this client: this one fails too.
            raise KafkaError("the event broker client was closed after a failed publish") from exc

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to `timeout`, then close; what an unreachable broker never took is dropped."""
        with self._lock:
            try:
                self._producer.close(timeout=timeout)
            except KafkaError:
                log.warning("event broker client closed with messages it could not deliver")


def _set_result(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _set_exception(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class Stopping(Exception):
    """Raised on a consumer thread to abandon a batch (its offsets uncommitted) when the consumer stops."""


@dataclass
class ConsumerConfig:
    """What a consumer group reads and how."""

    bootstrap: str
    group_id: str
    topics: tuple[str, ...]
    max_records: int = 500
    poll_timeout_ms: int = 500


class LagGauge:
    """`kafka_consumer_lag{group,topic,partition}` for the partitions a consumer holds, from the
    high watermark every fetch response carries and the consumer's position: no extra request.
    Refreshed at most once a second; partitions the consumer no longer holds are dropped."""

    def __init__(self, group_id: str, every_s: float = 1.0) -> None:
        self.group_id = group_id
        self.every_s = every_s
        self._next_at = 0.0
        self._labelled: set[tuple[str, str]] = set()

    def update(self, consumer: KafkaConsumer) -> None:
        now = time.monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self.every_s
        current = set()
        for partition in consumer.assignment():
            end = consumer.highwater(partition)
            position = consumer.position(partition, timeout_ms=0) if end is not None else None
            if end is None or position is None:
                continue
            key = (partition.topic, str(partition.partition))
            current.add(key)
            KAFKA_CONSUMER_LAG.labels(self.group_id, *key).set(max(end - position, 0))
        self._drop(self._labelled - current)
        self._labelled = current

    def clear(self) -> None:
        self._drop(self._labelled)
        self._labelled = set()

    def _drop(self, keys: set[tuple[str, str]]) -> None:
        for key in keys:
            with contextlib.suppress(KeyError):
                KAFKA_CONSUMER_LAG.remove(self.group_id, *key)


# How long a consumer whose commit was refused waits before it opens a new one.
REOPEN_S = 0.5
# How long a consumer on a replaced broker waits for its topics to be declared before it joins.
REJOIN_WAIT_S = 30.0
# How often a consumer still waiting for its topics to be declared says so.
TOPIC_WAIT_WARN_S = 30.0
# The longest a polled batch may take, and the group's rebalance timeout (see ConsumerLoop._open).
MAX_POLL_INTERVAL_MS = 45_000


class BrokerWatch:
    """Tells a consumer that its broker was replaced (a new cluster id).

    A replaced broker (the local memory-only one restarted; it gets a new id at each start)
    starts every log empty, and a consumer that kept its assignment stands at its old positions:
    once the new log grows past them, the records below are skipped without any sign
    (rewind_past_the_end sees only positions past the end). Its group may also have joined the
    new broker before every topic was back, and kafka-python does not join again when a subscribed
    topic appears later: that topic would never be read. So the consumer joins again (see
    ConsumerLoop._rejoin). The id comes with every metadata response, which kafka-python requests
    after a disconnect, so checking costs nothing. A durable cluster keeps its id for life.
    """

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.cluster_id: str | None = None

    def replaced(self, consumer: KafkaConsumer) -> bool:
        # kafka-python keeps the id on its client's cluster metadata; it has no public accessor.
        current = consumer._client.cluster.cluster_id
        if current is None or current == self.cluster_id:
            return False
        known, self.cluster_id = self.cluster_id, current
        if known is None:
            return False
        log.warning(
            "consumer %s: broker replaced (cluster %s, was %s): joining again, from every log's start",
            self.group_id,
            current,
            known,
        )
        return True


class ConsumerLoop:
    """Runs a consumer group on a thread; `handle` gets each polled batch and offsets commit after it returns.

    Committing only after `handle` returned (and `handle` commits its database transaction
    first) gives at-least-once delivery; handlers make it exactly-once in effect with a
    unique idempotency key in the same transaction.
    """

    def __init__(self, config: ConsumerConfig, handle: Callable[[list], None]) -> None:
        self.config = config
        self.handle = handle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.assigned = threading.Event()
        # Set once the thread has ended, whatever ended it (a stop, or an error it raised).
        self.exited = threading.Event()
        self._watch = BrokerWatch(config.group_id)
        self._lag = LagGauge(config.group_id)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_until_exit, name=f"consumer-{self.config.group_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_until_exit(self) -> None:
        try:
            self._run()
        finally:
            self.exited.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consume(self._open())
            # A refused commit ended that consumer: a moment before the next one joins, so a
            # broker that keeps refusing does not get a join per millisecond.
            self._stop.wait(REOPEN_S)

    def _await_topics(self, consumer: KafkaConsumer, within: float | None = None) -> bool:
        """Wait until the broker lists every subscribed topic; False when stopped or out of time.

        A consumer never creates a topic: whoever starts the broker declares the registry's
        (meshctl.datatier, Strimzi's KafkaTopic in production). Clients creating them too raced
        with each other right after a memory-only broker restarted, and a create overlapping a
        produce was seen to leave a partition whose high watermark hid the record it had just
        taken. Joining before a topic exists would leave it out of the assignment for good
        (kafka-python does not join again when a subscribed topic appears later).
        """
        deadline = None if within is None else time.monotonic() + within
        warned_at = time.monotonic()
        for topic in self.config.topics:
            while not consumer.partitions_for_topic(topic):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                if now - warned_at >= TOPIC_WAIT_WARN_S:
                    log.warning(
                        "consumer %s: topic %s not declared yet; waiting", self.config.group_id, topic
                    )
                    warned_at = now
                if self._stop.wait(0.2):
                    return False
        return True

    def _rejoin(self, consumer: KafkaConsumer) -> None:
        """Join the group again once the subscribed topics are back in this consumer's metadata.

        Joining again (not seeking) is what makes a topic that was not yet re-created at the
        group's first join part of the assignment; the new broker holds no offsets for the group,
        so every partition is read from its start (auto_offset_reset). kafka-python has no public
        call for joining again (a new subscription in the middle of a join is refused): its
        coordinator's request_rejoin is the one it uses itself.
        """
        self._await_topics(consumer, REJOIN_WAIT_S)
        consumer._coordinator.request_rejoin()

    def _open(self) -> KafkaConsumer:
        return KafkaConsumer(
            *self.config.topics,
            bootstrap_servers=self.config.bootstrap,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.config.max_records,
            allow_auto_create_topics=False,
            # A topic that went away with a restarted broker is noticed again within seconds
            # once it is re-created (kafka-python's default re-reads metadata every 5 minutes).
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
            # Also the rebalance timeout kafka-python asks for when it joins: how long the group
            # coordinator waits for a member to rejoin. A member closed in the middle of a
            # rebalance can stay listed, and with the default (300 s) a replacement consumer sat
            # in its join for minutes after a broker restart; a batch that takes longer than this
            # ends in a refused commit, and the consumer is replaced (commit_or_replay).
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )

    def _consume(self, consumer: KafkaConsumer) -> None:
        """Poll, handle and commit until stopped, or until a commit is refused (then the caller
        opens a new consumer, which joins the group afresh from the committed offsets)."""
        try:
            if not self._await_topics(consumer):
                return
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=self.config.poll_timeout_ms)
                if consumer.assignment():
                    self.assigned.set()
                if self._watch.replaced(consumer):
                    self._rejoin(consumer)
                    continue  # this batch may come from the new log at old positions: dropped
                self._lag.update(consumer)
                records = [record for batch in batches.values() for record in batch]
                if not records:
                    rewind_past_the_end(consumer, self.config.group_id)
                    continue
                with consuming(self.config.group_id, records):
                    self.handle(records)
                if self._watch.replaced(consumer):
                    self._rejoin(consumer)
                    continue  # never commit the old log's offsets to the new broker
                if not commit_or_replay(consumer, records, self.config.group_id):
                    return
        except Stopping:
            log.info("consumer %s stopped mid-batch; that batch will be replayed", self.config.group_id)
            self._stop.set()
        except Exception:
            log.exception("consumer %s stopped on an error", self.config.group_id)
            raise
        finally:
            self._lag.clear()
            consumer.close(autocommit=False)


def commit_or_replay(consumer: KafkaConsumer, records: list[Any], group_id: str) -> bool:
    """Commit a handled batch's offsets; False when the broker refuses (the group is rebalancing,
    or the broker restarted under it), with the offsets left uncommitted.

    The caller then replaces the consumer: kafka-python's consumer, kept after such a refusal,
    was seen to stop fetching for good, and letting the error end the consumer thread left a
    service serving without consuming (catalog's, which nothing restarted). The new consumer
    reads the batch again from the committed offsets; handlers are idempotent, so that is safe.
    """
    try:
        consumer.commit(handled_offsets(records))
        return True
    except KafkaError as exc:
        log.warning(
            "consumer %s: offsets of a handled batch not committed (%s); it will be read again",
            group_id,
            type(exc).__name__,
        )
        return False


def rewind_past_the_end(consumer: KafkaConsumer, group_id: str) -> list[TopicPartition]:
    """Read again from the start of every assigned partition whose log now ends before our position.

    A log never shrinks on a running broker, but a memory-only one that restarted starts each
    topic empty, and a consumer that kept its assignment through the restart would wait at its old
    position while new records arrive below it, never reading them (the broker answers fetches
    past the end with nothing, not an out-of-range error). The group's offsets went with the
    broker, so the start is where this group stands; handlers are idempotent, so a replay is safe.
    The high watermark comes with every fetch response: checking costs no request.
    """
    rewound = []
    for partition in consumer.assignment():
        end = consumer.highwater(partition)
        position = consumer.position(partition, timeout_ms=0) if end is not None else None
        if end is not None and position is not None and position > end:
            rewound.append(partition)
    if rewound:
        log.warning(
            "consumer %s: %s end before its positions (the broker lost them): reading from their start",
            group_id,
            ", ".join(f"{p.topic}[{p.partition}]" for p in rewound),
        )
        consumer.seek_to_beginning(*rewound)
    return rewound


def handled_offsets(records: Iterable[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit after a batch: one past the last record handled, for its partitions only.

    Never the consumer's other positions: after a broker lost its log (a memory-only broker
    restarted), a position from before is beyond the new log's end, and committing it would skip
    every event the new log gets up to it.
    """
    ends: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        ends[partition] = max(ends.get(partition, 0), record.offset + 1)
    return {partition: OffsetAndMetadata(end, "", -1) for partition, end in ends.items()}


# How long a consumer whose thread ended on its own waits before it starts again.
RESTART_S = 2.0


class AsyncConsumer:
    """A consumer group whose batches a coroutine handles on the service's event loop.

    kafka-python's consumer lives on its own thread; each polled batch is handed to the event loop
    and the thread waits for it, so offsets are committed only after `handle` returned (after its
    transaction committed). A failing batch is retried with backoff and never skipped: its offsets
    stay uncommitted until it succeeds or the consumer stops, and then it is replayed by whoever
    consumes the partition next. A consumer thread that ends on its own (a broker unreachable at
    start, say) is restarted.
    """

    def __init__(
        self,
        config: ConsumerConfig,
        handle: Callable[[list], Coroutine[Any, Any, object]],
        *,
        retry_s: float = 0.2,
        max_retry_s: float = 5.0,
    ) -> None:
        self.config = config
        self.handle = handle
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.assigned = threading.Event()  # set once a consumer thread got partitions
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: ConsumerLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start in the background (call on the event loop); returns at once, the group joins later."""
        self._loop = asyncio.get_running_loop()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"consumer-{self.config.group_id}")

    async def stop(self) -> None:
        """Stop consuming: an in-flight batch finishes, or is abandoned with its offsets uncommitted."""
        self._stopping.set()
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.stop)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            consumer = ConsumerLoop(self.config, self._handle)
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
            log.error("consumer %s ended unexpectedly; restarting in %.0fs", self.config.group_id, RESTART_S)
            await asyncio.sleep(RESTART_S)

    def _handle(self, records: list) -> None:
        """On the consumer thread: run the batch on the loop, retrying until it succeeds."""
        assert self._loop is not None
        delay = self.retry_s
        handle = in_current_context(lambda: self.handle(records))  # under the batch's span
        while True:
            future = asyncio.run_coroutine_threadsafe(handle(), self._loop)
            try:
                future.result()
                return
            except Exception:
                log.exception("consumer %s: a batch failed; retrying in %.1fs", self.config.group_id, delay)
            if self._stopping.wait(delay):
                raise Stopping("stopping with a batch that did not complete; it will be replayed")
            delay = min(delay * 2, self.max_retry_s)
