"""catalog_svc bootstrap: database, auth channel, change-event relay, stream-count consumer, servicer.

Nothing here blocks start-up on Kafka: the outbox relay connects its producer lazily (off the
event loop), and the stream-count consumer runs on its own thread, started once the server is
up, so its consumer-group join (seconds on tansu) happens while the service already answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack

import sqlalchemy
from grpc import aio
from spotify.auth.v1 import auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc import streams
from catalog_svc.editor import CatalogEditor
from catalog_svc.events import OutboxRelay
from catalog_svc.ingest import pipeline
from catalog_svc.ingestion import Ingestion
from catalog_svc.objects import ObjectBuilder
from catalog_svc.permissions import Permissions
from catalog_svc.search_store import SearchStore
from catalog_svc.servicer import CatalogServicer
from catalog_svc.settings import CatalogSettings
from catalog_svc.store import CatalogStore
from catalog_svc.write_store import WriteStore
from meshkit import db
from meshkit.channels import open_channel
from meshkit.config import Settings
from meshkit.kafka import ConsumerConfig, ConsumerLoop, Producer
from meshkit.migrate import normalize_url
from meshkit.server import run

SERVICE = "catalog_svc"
log = logging.getLogger(__name__)


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    config = CatalogSettings.of(settings)
    engine = db.create_engine(config.database_url)
    stack.push_async_callback(engine.dispose)
    sessions = db.session_factory(engine)

    auth = open_channel(config.auth_addr, timeout_s=config.rpc_timeout_s)
    stack.push_async_callback(auth.close)

    relay = OutboxRelay(
        sessions,
        lambda: Producer(config.kafka_bootstrap, client_id=SERVICE),
        interval_s=config.catalog_outbox_interval_s,
    )
    relay.start()
    stack.push_async_callback(relay.stop)

    objects = ObjectBuilder(config.public_base_url)
    store = CatalogStore(sessions)
    permissions = Permissions(auth_pb2_grpc.AuthServiceStub(auth))
    editor = CatalogEditor(WriteStore(sessions), permissions, objects, relay)
    pipeline.remove_stale_work_dirs(config.storage_root)
    ingestion = Ingestion(
        sessions,
        store,
        permissions,
        config.storage_root,
        config.public_base_url,
        config.catalog_max_upload_bytes,
    )
    stack.push_async_callback(ingestion.drain)
    servicer = CatalogServicer(store, objects, SearchStore(sessions), editor, ingestion)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)

    if config.catalog_stream_consumer:
        start_stream_consumer(config, stack)
    return [catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]


def start_stream_consumer(config: CatalogSettings, stack: AsyncExitStack) -> ConsumerLoop:
    """The streams.counted.v1 projection on its own thread, started after setup returns.

    call_soon runs it once start_server has moved on (the server starts and reports SERVING
    without waiting); the thread then joins the group in the background.
    """
    sync_engine = sqlalchemy.create_engine(
        normalize_url(config.database_url), pool_size=2, pool_pre_ping=True
    )
    projection = streams.StreamCountProjection(sync_engine)
    loop = ConsumerLoop(
        ConsumerConfig(
            bootstrap=config.kafka_bootstrap, group_id=config.catalog_stream_group, topics=(streams.TOPIC,)
        ),
        projection.handle,
    )
    stopped = False

    def begin() -> None:
        if not stopped:
            loop.start()

    asyncio.get_running_loop().call_soon(begin)

    async def stop() -> None:
        nonlocal stopped
        stopped = True
        projection.stop()
        await asyncio.to_thread(loop.stop)
        sync_engine.dispose()

    stack.push_async_callback(stop)
    return loop


def main() -> None:
    run(SERVICE, setup)
