"""The stream counter: a Kafka consumer group on ``playback.events.v1`` that turns playback
sessions into counted streams exactly once (ARCHITECTURE decision 6).

* :mod:`.rules` decides which event makes a session count (pure).
* :mod:`.batch` turns one polled batch into the streams it may count.
* :mod:`.store` writes them in one PostgreSQL transaction, deduplicated by idempotency key.
* :mod:`.service` is the handler: fast path, catalog lookups, the transaction, side effects.
* :mod:`.relay` publishes the transactional outbox to ``streams.counted.v1``.
* :mod:`.runner` wires it onto :class:`meshkit.kafka.ConsumerLoop`, inside playback_svc or alone
  (``python -m playback_svc.counter``).
"""
