"""playback_svc bootstrap: database, Redis, channels to catalog, library and auth, the Kafka producer, the
servicer, and the stream counter (a consumer group) started in the background.

The counter's ``start()`` returns at once: the consumer group join (about 5 s on tansu) happens
on the consumer's own thread, so the service reports SERVING without waiting for it. On SIGTERM
the stack unwinds in reverse: the counter stops first (its in-flight batch still has the
database and the loop), then the producer, channels, Redis and the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit import db
from meshkit.channels import open_channel
from meshkit.config import Settings
from meshkit.kafka import Producer
from meshkit.redis_client import create_redis
from meshkit.server import run
from playback_svc.catalog import CatalogClient
from playback_svc.config import PlaybackSettings, get_playback_settings
from playback_svc.contexts import Contexts
from playback_svc.counter.runner import CounterRunner, build_runner
from playback_svc.servicer import Deps, PlaybackServicer

SERVICE = "playback_svc"
POOL_SIZE = 10

Setup = Callable[[aio.Server, Settings, AsyncExitStack], Awaitable[Sequence[str]]]


def make_setup(own: PlaybackSettings, started: list[CounterRunner] | None = None) -> Setup:
    """The setup for ``meshkit.server``; ``started`` (tests) receives the counter runner, if any."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        engine = db.create_engine(settings.database_url, pool_size=POOL_SIZE)
        stack.push_async_callback(engine.dispose)
        redis_client = create_redis(settings.redis_url)
        stack.push_async_callback(redis_client.aclose)
        catalog_channel = open_channel(settings.catalog_addr, timeout_s=settings.rpc_timeout_s)
        stack.push_async_callback(catalog_channel.close)
        auth_channel = open_channel(settings.auth_addr, timeout_s=settings.rpc_timeout_s)
        stack.push_async_callback(auth_channel.close)
        library_channel = open_channel(settings.library_addr, timeout_s=settings.rpc_timeout_s)
        stack.push_async_callback(library_channel.close)
        producer = Producer(settings.kafka_bootstrap, client_id=SERVICE)
        stack.callback(producer.close)
        catalog = CatalogClient(catalog_channel, audio_files_ttl_s=own.audio_files_cache_s)
        deps = Deps(
            settings=settings,
            own=own,
            sessions=db.session_factory(engine),
            redis=redis_client,
            catalog=catalog,
            contexts=Contexts(catalog_channel, library_channel),
            auth_channel=auth_channel,
            producer=producer,
        )
        playback_pb2_grpc.add_PlaybackServiceServicer_to_server(PlaybackServicer(deps), server)
        if own.counter_enabled:
            runner = build_runner(
                bootstrap=settings.kafka_bootstrap,
                group_id=own.counter_group,
                topic=own.counter_topic,
                engine=engine,
                redis_client=redis_client,
                catalog=catalog,
                producer=producer,
                max_records=own.counter_max_records,
            )
            runner.start()
            stack.push_async_callback(runner.stop)
            if started is not None:
                started.append(runner)
        return [playback_pb2.DESCRIPTOR.services_by_name["PlaybackService"].full_name]

    return setup


def main() -> None:
    run(SERVICE, make_setup(get_playback_settings()))
