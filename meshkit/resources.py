"""The resources a process opens at start-up, each closed by the exit stack that owns the server.

Every `server.py` opened a database engine, Redis, channels to its neighbours and a Kafka
producer, and pushed each one's close onto the stack by hand; this is that pairing, once. The
stack closes them in reverse order when the server has drained.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import redis.asyncio as redis
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit import db
from meshkit.channels import open_channel
from meshkit.config import Settings
from meshkit.redis_client import create_redis

if TYPE_CHECKING:
    from meshkit.kafka import Producer
    from meshkit.user_deletion import DeletedUser


class Resources:
    """Opens what a service needs from `settings`; `stack` closes it."""

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self.settings = settings
        self.stack = stack

    def database(self, pool_size: int = db.POOL_SIZE) -> AsyncEngine:
        engine = db.create_engine(self.settings.database_url, pool_size=pool_size)
        self.stack.push_async_callback(engine.dispose)
        return engine

    def redis(self) -> redis.Redis:
        client = create_redis(self.settings.redis_url)
        self.stack.push_async_callback(client.aclose)
        return client

    def channel(self, address: str) -> aio.Channel:
        """A channel to another service, with the mesh's deadline on every call."""
        channel = open_channel(address, timeout_s=self.settings.rpc_timeout_s)
        self.stack.push_async_callback(channel.close)
        return channel

    def producer(self, client_id: str) -> Producer:
        # Imported here: kafka-python is a hundred modules that services without a producer never load.
        from meshkit.kafka import Producer

        producer = Producer(self.settings.kafka_bootstrap, client_id=client_id)
        self.stack.callback(producer.close)
        return producer

    def user_deletions(
        self, service: str, erase: Callable[[DeletedUser], Awaitable[None]], auth_channel: aio.Channel
    ) -> None:
        """Take part in account deletions: `erase` each deleted user, then confirm to auth_svc
        (unless the settings turn it off), for as long as the stack is open."""
        if not self.settings.user_deletions:
            return
        from meshkit.user_deletion import consumer

        deletions = consumer(service, self.settings.kafka_bootstrap, erase, auth_channel)
        deletions.start()
        self.stack.push_async_callback(deletions.stop)
