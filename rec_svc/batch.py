"""The recommendation batch job: build a model version, publish it, precompute Discover Weekly.

    python -m rec_svc.batch build [--no-reload] [--no-mixes]   # what `make recs` and the schedule run
    python -m rec_svc.batch status
    python -m rec_svc.batch purge-applied [--days 8]                # the consumer's old dedup ids

A build reads rec's listening history and the catalog (through rec_svc.inputs), builds the
embeddings and both hnswlib indexes, writes them as a new version directory, records and
activates the version in rec.index_versions, stores a Discover Weekly for every user active
in the last 28 days, and finally asks the running rec_svc to swap the version in (replicas
that miss the call pick the active version up on their next poll).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import grpc
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from meshkit import db, ids
from meshkit.catalog_client import CatalogClient
from meshkit.channels import endpoints, open_channel
from meshkit.config import Settings, get_settings
from meshkit.jobs import run_job
from rec_svc import recommend
from rec_svc.clients import Catalog
from rec_svc.inputs import RecInputSource
from rec_svc.model.build import build_model
from rec_svc.model.params import DIM, ModelParams
from rec_svc.model.types import ModelInputs, Play
from rec_svc.settings import RecSettings, get_rec_settings
from rec_svc.snapshot import Snapshot
from rec_svc.store import RecStore, StoredMix
from rec_svc.versions import new_version, prune, write_version

log = logging.getLogger("rec_svc.batch")

# The batch job is an internal admin caller of rec_svc's ReloadIndexes (which requires the role).
BATCH_USER = uuid.uuid5(uuid.NAMESPACE_URL, "spotify-mesh:rec_svc:batch")
ADMIN_METADATA = (("x-user-id", ids.encode(BATCH_USER)), ("x-user-roles", "admin"))
MIX_BATCH = 500


def mixes_for(snap: Snapshot, inputs: ModelInputs) -> list[StoredMix]:
    """A Discover Weekly for every user with plays in the history window."""
    since = inputs.now.timestamp() - snap.params.history_days * 86_400
    inter = inputs.interactions
    plays: dict[int, list[Play]] = defaultdict(list)
    for u, t, ts, w in zip(
        inter.user_idx.tolist(),
        inter.track_idx.tolist(),
        inter.ts.tolist(),
        inter.weight.tolist(),
        strict=True,
    ):
        if ts >= since:
            plays[u].append(Play(inter.tracks[t], datetime.fromtimestamp(ts, UTC), w))
    out: list[StoredMix] = []
    for u, history in plays.items():
        user_id = inter.users[u]
        state = recommend.user_state(snap, user_id, history, inputs.now)
        rows, _ = recommend.discover_weekly(snap, state)
        out.append(StoredMix(user_id, [snap.track_id(r) for r in rows], inputs.now, snap.version))
    return out


async def build(
    settings: Settings,
    rec: RecSettings,
    *,
    reload: bool = True,
    mixes: bool = True,
    now: datetime | None = None,
) -> dict:
    """One batch run; returns a summary (also what the CLI prints)."""
    now = now or datetime.now(UTC)
    params = ModelParams()
    engine = db.create_engine(settings.database_url, pool_size=2)
    channel = open_channel(settings.catalog_addr, timeout_s=settings.rpc_timeout_s)
    try:
        store = RecStore(db.session_factory(engine))
        source = RecInputSource(store, Catalog(CatalogClient(channel)), params)
        started = time.perf_counter()
        inputs = await source.load(now)
        loaded = time.perf_counter()
        model = await asyncio.to_thread(build_model, inputs, params)
        snap = await asyncio.to_thread(
            Snapshot.from_model,
            model,
            new_version(now),
            m=rec.hnsw_m,
            ef_construction=rec.hnsw_ef_construction,
            ef=rec.hnsw_ef,
            threads=rec.build_threads,
        )
        built = time.perf_counter()
        path = await asyncio.to_thread(write_version, snap, rec.index_dir)
        counts = {"tracks": len(snap.tracks), "users": len(snap.users)}
        await store.record_version(snap.version, str(path), now, counts, DIM, activate=True)
        stored = 0
        if mixes:
            all_mixes = await asyncio.to_thread(mixes_for, snap, inputs)
            for i in range(0, len(all_mixes), MIX_BATCH):
                await store.save_discover_weekly(all_mixes[i : i + MIX_BATCH])
            stored = len(all_mixes)
        removed = prune(rec.index_dir, rec.keep_versions, {snap.version})
        summary = {
            "version": snap.version,
            "path": str(path),
            "tracks": counts["tracks"],
            "users": counts["users"],
            "listens": len(inputs.interactions),
            "discover_weekly_stored": stored,
            "load_s": round(loaded - started, 2),
            "build_s": round(built - loaded, 2),
            "total_s": round(time.perf_counter() - started, 2),
            "pruned": removed,
            "reloaded": await _reload(settings, snap.version) if reload else False,
        }
        return summary
    finally:
        await channel.close()
        await engine.dispose()


async def _reload(settings: Settings, version: str) -> bool:
    """Ask every running rec_svc replica to swap the version in now (best effort: each also polls);
    True when all did."""
    try:
        addresses = endpoints(settings.rec_addr)
    except OSError as err:
        log.warning("rec_svc's replicas could not be resolved (%s); they will poll for the version", err)
        return False
    reloaded = await asyncio.gather(*(_reload_one(address, version) for address in addresses))
    return bool(reloaded) and all(reloaded)


async def _reload_one(address: str, version: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await rec_pb2_grpc.RecommendationServiceStub(channel).ReloadIndexes(
                rec_pb2.ReloadIndexesRequest(version=version), metadata=ADMIN_METADATA, timeout=120
            )
            return True
        except grpc.aio.AioRpcError as err:
            log.warning(
                "rec_svc at %s did not reload (%s); it will pick the version up on its next poll",
                address,
                err.code().name,
            )
            return False


async def status(settings: Settings) -> dict:
    engine = db.create_engine(settings.database_url, pool_size=1)
    try:
        row = await RecStore(db.session_factory(engine)).active_version()
        return (
            {"active": None}
            if row is None
            else {"active": row.version, "path": row.path, "built_at": row.built_at.isoformat()}
        )
    finally:
        await engine.dispose()


# The topics' retention (k8s/overlays/prod/kafka.yaml) plus a day: an event id older than this
# can never be delivered again, so its dedup row is dead weight.
PURGE_AFTER_DAYS = 8


async def purge_applied(settings: Settings, days: int) -> dict[str, int]:
    engine = db.create_engine(settings.database_url, pool_size=1)
    try:
        return {
            "applied_event_ids_purged": await RecStore(db.session_factory(engine)).purge_applied_events(
                days=days
            )
        }
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rec_svc.batch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build, publish and activate a new version")
    b.add_argument("--no-reload", action="store_true", help="do not call ReloadIndexes on rec_svc")
    b.add_argument("--no-mixes", action="store_true", help="skip precomputing Discover Weekly")
    sub.add_parser("status", help="print the active version")
    purge = sub.add_parser("purge-applied", help="forget applied event ids older than --days")
    purge.add_argument("--days", type=int, default=PURGE_AFTER_DAYS)
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "status":
        print(json.dumps(asyncio.run(status(settings)), indent=2))
        return 0
    if args.command == "purge-applied":
        if args.days < 1:
            parser.error("--days must be at least 1")
        return run_job("rec_svc", "purge-rec-events", lambda: asyncio.run(purge_applied(settings, args.days)))
    return run_job(
        "rec_svc",
        "rec-batch",
        lambda: asyncio.run(
            build(settings, get_rec_settings(), reload=not args.no_reload, mixes=not args.no_mixes)
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
