"""The production InputSource: rec's own listening history plus catalog facts over gRPC.

Which tracks exist: every track rec has heard of (rec.tracks, fed by catalog.changes.v1 and
counted streams), every track a listen mentions, and whatever the catalog lists through
search. Their facts are refreshed from catalog_svc in batches on every build and written
back to rec.tracks, so a build still works (on the last known facts) when the catalog is down.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import grpc

from meshkit.channels import is_status
from rec_svc.clients import Catalog
from rec_svc.model.params import ModelParams
from rec_svc.model.types import Interactions, ModelInputs
from rec_svc.store import RecStore

log = logging.getLogger(__name__)


class RecInputSource:
    def __init__(self, store: RecStore, catalog: Catalog, params: ModelParams | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.params = params or ModelParams()

    async def load(self, now: datetime) -> ModelInputs:
        since = now - timedelta(days=self.params.model_window_days)
        rows = [row async for row in self.store.interactions(since)]
        known = {meta.track_id: meta for meta in await self.store.track_metas()}
        wanted = set(known) | {track for _, track, _, _ in rows}
        try:
            wanted |= await self.catalog.enumerate_tracks()
            metas = await self.catalog.track_metas(sorted(wanted))
        except grpc.aio.AioRpcError as err:
            if not is_status(err, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise  # a catalog that answers wrongly must not quietly degrade a published version
            log.warning("catalog unavailable, building on rec's last known track facts: %s", err.details())
            metas = [meta for t, meta in known.items() if t in wanted]
        else:
            await self.store.upsert_tracks(list({m.track_id: m for m in metas}.values()))
            # Tracks the catalog no longer returns are gone: never recommend them again.
            await self.store.mark_deleted(sorted(wanted - {m.track_id for m in metas}))
        present = {m.track_id for m in metas}
        interactions = Interactions.from_rows(row for row in rows if row[1] in present)
        metas.sort(key=lambda m: m.track_id)
        log.info("model inputs loaded", extra={"tracks": len(metas), "listens": len(interactions)})
        return ModelInputs(now=now, tracks=metas, interactions=interactions)
