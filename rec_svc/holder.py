"""The holder of the served index version, which swaps a new one in while queries keep running.

Zero failed requests during a swap comes from two rules:
- a request reads `IndexHolder.current` once and keeps that Snapshot for its whole life, so
  it finishes on the version it started with; the old version is freed by reference counting
  only after the last such request lets go of it (nothing is ever closed under a reader);
- publishing a new version is one reference assignment, made only after the new version is
  fully loaded and has caught up with the tracks added live since its build.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from rec_svc.model.types import TrackMeta
from rec_svc.snapshot import Snapshot

log = logging.getLogger(__name__)


class IndexHolder:
    """The currently served Snapshot, replaced by reference swap (see the module docstring)."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self.loaded_at: datetime | None = None
        # Tracks added live since the current build, re-applied to the next version if it lacks them.
        self._added: dict[uuid.UUID, TrackMeta] = {}
        self._deleted: set[uuid.UUID] = set()
        self._swap_lock = asyncio.Lock()

    async def swap(self, snapshot: Snapshot) -> Snapshot | None:
        """Publish `snapshot`; returns the version it replaced (still alive while requests use it)."""
        async with self._swap_lock:
            missing = [meta for key, meta in self._added.items() if snapshot.tracks.rows.get(key) is None]
            if missing:
                snapshot.add_tracks(missing)
            for key in self._deleted:
                snapshot.delete_track(key)
            self._added = {meta.track_id: meta for meta in missing}
            self._deleted = {key for key in self._deleted if snapshot.tracks.rows.get(key) is not None}
            old, self.current = self.current, snapshot
            self.loaded_at = datetime.now(UTC)
            snapshot.loaded_at = self.loaded_at
            # A version holds millions of long-lived objects (ids, dicts); left to the cyclic GC,
            # every full collection walks them all (about 100 ms per million ids, a p95 spike).
            # Freezing moves them out of its reach; they are still freed by reference counting
            # when the last request lets go of the version (a Snapshot has no cycles).
            gc.freeze()
            log.info("index version swapped in", extra={"version": snapshot.version})
            return old

    def add_tracks(self, metas: Sequence[TrackMeta], snapshot: Snapshot | None = None) -> None:
        """Add tracks to the live track index (content embedding: cold start) and remember them.

        `snapshot` is the version a request is working with, when that may no longer be the
        current one (a swap happened while it waited on I/O); both get the tracks.
        """
        for meta in metas:
            self._added[meta.track_id] = meta
            self._deleted.discard(meta.track_id)
        for snap in {id(s): s for s in (self.current, snapshot) if s is not None}.values():
            snap.add_tracks(list(metas))

    def delete_track(self, track_id: uuid.UUID) -> None:
        self._added.pop(track_id, None)
        self._deleted.add(track_id)
        if self.current is not None:
            self.current.delete_track(track_id)
