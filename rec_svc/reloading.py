"""Index versions: load the active one (or a named one), swap it in, follow the batch job's activations.

A new version is read off the event loop, swapped in by reference (rec_svc.holder), then
caught up with the tracks rec learnt of since it was built; requests in flight finish on the
version they started with.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from meshkit.errors import FailedPrecondition, NotFound
from rec_svc.holder import IndexHolder
from rec_svc.settings import RecSettings
from rec_svc.snapshot import Snapshot
from rec_svc.store import RecStore
from rec_svc.versions import read_version

log = logging.getLogger(__name__)


@dataclass(eq=False)
class IndexReloader:
    store: RecStore
    holder: IndexHolder
    settings: RecSettings
    _reload_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

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
