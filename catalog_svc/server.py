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
from functools import partial
from typing import Any

import sqlalchemy
from grpc import aio
from spotify.auth.v1 import auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc.audio_store import AudioStore
from catalog_svc.clients import Auth
from catalog_svc.ingestion import Ingestion
from catalog_svc.models import OutboxEvent
from catalog_svc.objects import ObjectBuilder
from catalog_svc.permissions import Permissions
from catalog_svc.reads import Reads
from catalog_svc.search import Search
from catalog_svc.search_store import SearchStore
from catalog_svc.servicer import CatalogServicer
from catalog_svc.settings import CatalogSettings, get_catalog_settings
from catalog_svc.store import CatalogStore
from catalog_svc.stream_store import StreamStore
from catalog_svc.streams import StreamCountProjection
from catalog_svc.takedowns import Takedowns
from catalog_svc.user_data_store import UserDataStore
from catalog_svc.write_store import WriteStore
from catalog_svc.writes import Writes
from meshkit import db, evictions, topics
from meshkit.config import Settings
from meshkit.db import normalize_url
from meshkit.kafka import AsyncConsumer, ConsumerConfig, Producer
from meshkit.outbox import DeletingOutboxStore, OutboxRelay
from meshkit.resources import Resources
from meshkit.server import Setup, run

SERVICE = "catalog_svc"
log = logging.getLogger(__name__)


def make_setup(catalog_settings: CatalogSettings | None = None) -> Setup:
    """The server setup, with catalog's own settings injectable (tests give each run its own group)."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        catalog = catalog_settings or get_catalog_settings()
        opened = Resources(settings, stack)
        sessions = db.session_factory(opened.database())
        auth = opened.channel(settings.auth_addr)

        relay = OutboxRelay(
            DeletingOutboxStore(sessions, OutboxEvent),
            lambda: Producer(settings.kafka_bootstrap, client_id=SERVICE),
            name="catalog-outbox-relay",
            interval_s=catalog.outbox_interval_s,
        )
        relay.start()
        stack.push_async_callback(relay.stop)

        objects = ObjectBuilder(settings.public_base_url)
        store = CatalogStore(sessions)
        auth_client = Auth(auth_pb2_grpc.AuthServiceStub(auth))
        permissions = Permissions(auth_client)
        write_store = WriteStore(sessions)
        ingestion = Ingestion(
            AudioStore(sessions),
            store,
            permissions,
            settings.storage_root,
            settings.public_base_url,
            catalog.max_upload_bytes,
        )
        ingestion.remove_stale_work()
        stack.push_async_callback(ingestion.drain)
        user_data = UserDataStore(sessions)
        servicer = CatalogServicer(
            Reads(store),
            Search(SearchStore(sessions), store),
            objects,
            Writes(write_store, permissions, objects, relay.kick),
            ingestion,
            Takedowns(
                write_store,
                permissions,
                objects,
                auth_client.audit,
                partial(evictions.announce, opened.redis()),
                relay.kick,
            ),
            user_data.export_user,
        )
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)
        opened.user_deletions(SERVICE, lambda user: user_data.erase_user(user.user_id, user.pseudonym), auth)

        if catalog.stream_consumer:
            start_stream_consumer(settings, catalog, stack)
        return [catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]

    return setup


def start_stream_consumer(
    settings: Settings, catalog: CatalogSettings, stack: AsyncExitStack
) -> AsyncConsumer:
    """The streams.counted.v1 projection, supervised like every consumer group of the mesh: a
    consumer thread that ends on its own is started again.

    The projection writes through a synchronous engine of its own, so each batch runs on a worker
    thread (it retries database errors itself, until the consumer stops).
    """
    sync_engine = sqlalchemy.create_engine(
        normalize_url(settings.database_url), pool_size=2, pool_pre_ping=True
    )
    db.measure_pool(sync_engine, "stream_counts")
    projection = StreamCountProjection(StreamStore(sync_engine))

    async def handle(records: list[Any]) -> None:
        await asyncio.to_thread(projection.handle, records)

    consumer = AsyncConsumer(
        ConsumerConfig(
            bootstrap=settings.kafka_bootstrap,
            group_id=catalog.stream_group,
            topics=(topics.STREAMS_COUNTED.name,),
        ),
        handle,
    )
    consumer.start()

    async def stop() -> None:
        projection.stop()
        await consumer.stop()
        sync_engine.dispose()

    stack.push_async_callback(stop)
    return consumer


setup = make_setup()


def main() -> None:
    run(SERVICE, setup)
