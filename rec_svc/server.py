"""rec_svc bootstrap: database, catalog channel, the served index version, its consumers and servicer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from grpc import aio
from spotify.catalog.v1 import catalog_pb2
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from meshkit import db
from meshkit.catalog_client import CatalogClient
from meshkit.config import Settings
from meshkit.errors import FailedPrecondition
from meshkit.resources import Resources
from meshkit.server import Setup, run
from meshkit.ttlcache import TTLCache
from rec_svc.clients import Catalog
from rec_svc.consumers import EventApplier, consumer_group
from rec_svc.holder import IndexHolder
from rec_svc.recommendations import Recommendations
from rec_svc.reloading import IndexReloader
from rec_svc.servicer import RecommendationServicer
from rec_svc.settings import RecSettings, get_rec_settings
from rec_svc.store import RecStore

SERVICE = "rec_svc"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecRuntime:
    """The objects a started rec_svc runs on (handed to `on_ready`, a seam for in-process tests)."""

    recommendations: Recommendations
    reloader: IndexReloader
    applier: EventApplier


def make_setup(
    rec_settings: RecSettings | None = None, *, on_ready: Callable[[RecRuntime], None] | None = None
) -> Setup:
    """The server setup, with rec's own settings injectable (tests give each run its own index dir)."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        rec = rec_settings or get_rec_settings()
        opened = Resources(settings, stack)
        engine, channel = opened.database(rec.db_pool_size), opened.channel(settings.catalog_addr)
        track_cache: TTLCache[str, catalog_pb2.Track] = TTLCache(
            rec.track_cache_size, rec.track_cache_ttl_s, name="catalog_tracks"
        )
        catalog = Catalog(CatalogClient(channel, track_cache=track_cache))
        store = RecStore(db.session_factory(engine))
        holder = IndexHolder()
        recommendations = Recommendations(store, catalog, holder, rec)
        reloader = IndexReloader(store, holder, rec)
        if rec.live_sync_s > 0:
            await reloader.start_sync()
        try:
            await reloader.reload()
        except FailedPrecondition:
            log.info("no index version built yet; serving without one until the batch job runs")
        except Exception:
            log.exception("loading the active index version failed; the poller will retry")
        if rec.reload_poll_s > 0:
            poller = asyncio.create_task(reloader.poll_versions(), name="rec-index-poller")
            stack.push_async_callback(_cancel, poller)
        if rec.live_sync_s > 0:
            follower = asyncio.create_task(reloader.follow_tracks(), name="rec-live-tracks")
            stack.push_async_callback(_cancel, follower)
        applier = EventApplier(store, catalog, holder)
        if rec.consumers:
            consumer = consumer_group(settings.kafka_bootstrap, rec.consumer_group, applier)
            consumer.start()
            stack.push_async_callback(consumer.stop)
        opened.user_deletions(
            SERVICE, lambda user: store.erase_user(user.user_id), opened.channel(settings.auth_addr)
        )
        servicer = RecommendationServicer(
            recommendations, reloader, settings.public_base_url, store.export_user
        )
        rec_pb2_grpc.add_RecommendationServiceServicer_to_server(servicer, server)
        if on_ready is not None:
            on_ready(RecRuntime(recommendations, reloader, applier))
        return [rec_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name]

    return setup


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


setup = make_setup()


def main() -> None:
    run(SERVICE, setup)
