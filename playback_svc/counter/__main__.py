"""``python -m playback_svc.counter``: the stream counter as a process of its own.

The same code playback_svc runs in the background, for deployments that scale the counter
separately and for tests that kill it (``PLAYBACK_COUNTER_CRASH_AFTER_COMMITS``). Settings come
from the environment like every service's (DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP,
CATALOG_ADDR, PLAYBACK_COUNTER_GROUP, ...). SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from meshkit.channels import open_channel
from meshkit.config import get_settings
from meshkit.db import create_engine
from meshkit.kafka import Producer
from meshkit.logs import configure_logging
from meshkit.metrics import start_exporter
from meshkit.redis_client import create_redis
from playback_svc.catalog import CatalogClient
from playback_svc.config import get_playback_settings
from playback_svc.counter.runner import build_runner, crash_after

log = logging.getLogger("playback_svc.counter")


async def serve() -> None:
    settings = get_settings()
    own = get_playback_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.database_url, pool_size=4)
    redis_client = create_redis(settings.redis_url)
    channel = open_channel(settings.catalog_addr, timeout_s=settings.rpc_timeout_s)
    producer = Producer(settings.kafka_bootstrap, client_id="stream-counter")
    crash_hook = crash_after(own.counter_crash_after_commits) if own.counter_crash_after_commits else None
    runner = build_runner(
        bootstrap=settings.kafka_bootstrap,
        group_id=own.counter_group,
        topic=own.counter_topic,
        engine=engine,
        redis_client=redis_client,
        catalog=CatalogClient(channel),
        producer=producer,
        max_records=own.counter_max_records,
        after_db_commit=crash_hook,
    )
    try:
        runner.start()
        log.info("stream counter started", extra={"group": own.counter_group, "topic": own.counter_topic})
        await stop.wait()
    finally:
        await runner.stop()
        producer.close()
        await channel.close()
        await redis_client.aclose()
        await engine.dispose()
    log.info("stream counter stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("stream_counter", settings.log_level)
    if settings.metrics_port > 0:
        with contextlib.suppress(OSError):
            start_exporter(settings.metrics_host, settings.metrics_port)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
