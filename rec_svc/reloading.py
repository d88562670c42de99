"""Index versions: load the active one (or a named one), swap it in, follow the batch job's activations.

A new version is read off the event loop, swapped in by reference (rec_svc.holder), then
caught up with the tracks rec learnt of since it was built; requests in flight finish on the
version they started with.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from meshkit.errors import FailedPrecondition, NotFound
from rec_svc.holder import IndexHolder
from rec_svc.settings import RecSettings
from rec_svc.snapshot import Snapshot
from rec_svc.store import RecStore
from rec_svc.versions import read_version

log = logging.getLogger(__name__)


# A row's `updated_at` is its transaction's start, so it can become visible after a later-stamped
# one: each sync reads again from this long before the previous one's clock.
SYNC_OVERLAP = timedelta(seconds=30)


@dataclass(eq=False)
class IndexReloader:
    store: RecStore
    holder: IndexHolder
    settings: RecSettings
    _reload_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    # Live track changes: read from here on (None: not started), and the stamps already applied.
    _synced_from: datetime | None = field(init=False, default=None)
    _applied: dict[uuid.UUID, datetime] = field(init=False, default_factory=dict)

    async def reload(self, version: str = "") -> Snapshot:
        """Load `version` (default: the active one) and swap it in; the old one drains naturally."""
        async with self._reload_lock:
            row = await (self.store.find_version(version) if version else self.store.active_version())
            if row is None:
                if version:
                    raise NotFound(f"index version {version!r} not found")
                raise FailedPrecondition("no index version has been built yet")
            if version and not row.active:
                await self.store.activate(row.version)  # so every replica's poller agrees
            current = self.holder.current
            if current is not None and current.version == row.version:
                return current
            snap = await asyncio.to_thread(read_version, Path(row.path), ef=self.settings.hnsw_ef)
            await self.holder.swap(snap)
            await self.catch_up_tracks(snap)
            return snap

    async def catch_up_tracks(self, snap: Snapshot) -> int:
        """Tracks rec learnt of since this version was built (catalog events, streams): add them live."""
        missing = [m for m in await self.store.track_metas() if m.track_id not in snap.tracks.rows]
        if missing:
            self.holder.add_tracks(missing, snap)
        return len(missing)

    async def start_sync(self) -> None:
        """Mark where live track changes are read from; called before the first version loads
        (which catches up with everything older)."""
        self._synced_from = await self.store.clock() - SYNC_OVERLAP

    async def sync_tracks(self) -> int:
        """Apply the catalog changes other replicas consumed: rec.tracks rows stamped since the last
        sync go into (or out of) this replica's live index. Returns how many were applied.

        The consumer group gives each catalog change to one replica, which writes rec.tracks and
        updates its own index at once; every other replica learns of it here, within `live_sync_s`.
        """
        if self._synced_from is None:
            await self.start_sync()
            return 0
        rows, started = await self.store.tracks_changed_since(self._synced_from)
        fresh = [
            (meta, deleted) for meta, deleted, stamp in rows if self._applied.get(meta.track_id) != stamp
        ]
        for meta, deleted in fresh:
            if deleted:
                self.holder.delete_track(meta.track_id)
        added = [meta for meta, deleted in fresh if not deleted]
        if added:
            self.holder.add_tracks(added)
        self._synced_from = started - SYNC_OVERLAP
        self._applied = {meta.track_id: stamp for meta, _, stamp in rows if stamp >= self._synced_from}
        return len(fresh)

    async def follow_tracks(self) -> None:
        """Background task: `sync_tracks` every `live_sync_s`."""
        while True:
            await asyncio.sleep(self.settings.live_sync_s)
            try:
                await self.sync_tracks()
            except Exception:
                log.exception("reading live track changes failed; retrying")

    async def poll_versions(self) -> None:
        """Background task: follow rec.index_versions' active version (the batch job activates it)."""
        while True:
            await asyncio.sleep(self.settings.reload_poll_s)
            try:
                await self.reload()
            except FailedPrecondition:
                pass
            except Exception:
                log.exception("reloading indexes failed; keeping the current version")
