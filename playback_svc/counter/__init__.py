"""The stream counter: a Kafka consumer group on ``playback.events.v1`` that turns playback
sessions into counted streams exactly once.

Exactly once, because offsets are committed only after the batch's transaction committed (a
crash replays the batch) and ``counted_streams.idempotency_key`` is unique (the replay inserts
nothing). Everything a count causes (the track's count, history, royalties, the
``streams.counted.v1`` event through a transactional outbox) is written in that transaction.

* :mod:`.rules` decides which event makes a session count, and how royalties split (pure).
* :mod:`.batch` turns one polled batch into the streams it may count (pure).
* :mod:`.counting` handles a batch: fast path, catalog lookups, the transaction, side effects.
* meshkit.outbox relays the outbox rows to ``streams.counted.v1`` (the runner runs it).
* :mod:`.store` is its SQL, :mod:`.fast_path` the Redis set of counted sessions.
* :mod:`.active` tracks the sessions live right now (the ``active_streams`` gauge).
* :mod:`.runner` runs it as a consumer group, inside playback_svc or alone
  (``python -m playback_svc.counter``).
"""
