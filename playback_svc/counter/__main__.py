"""``python -m playback_svc.counter``: the stream counter as a process of its own.

The same code playback_svc runs in the background, for deployments that scale the counter
separately (and tests that kill it). Settings come from the environment like every service's
(DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP, CATALOG_ADDR, PLAYBACK_COUNTER_GROUP, ...). SIGTERM
stops it cleanly; a batch cut short by anything harsher is replayed by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack

from meshkit import eventloop
from meshkit.config import get_settings
from meshkit.logs import configure_logging
from meshkit.metrics import start_exporter
from meshkit.resources import Resources
from playback_svc.clients import Catalog
from playback_svc.counter.runner import build_runner
from playback_svc.settings import get_playback_settings

log = logging.getLogger("playback_svc.counter")
POOL_SIZE = 4


async def serve() -> None:
    settings, playback = get_settings(), get_playback_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        opened = Resources(settings, stack)
        engine, redis_client = opened.database(POOL_SIZE), opened.redis()
        channel, producer = opened.channel(settings.catalog_addr), opened.producer("stream-counter")
        # Plays of a track taken down since still count: the listener did listen.
        catalog = Catalog.cached(
            channel, audio_files_ttl_s=playback.audio_files_cache_s, include_unavailable=True
        )
        runner = build_runner(settings, playback, engine, redis_client, catalog, producer)
        runner.start()
        stack.push_async_callback(runner.stop)
        log.info(
            "stream counter started", extra={"group": playback.counter_group, "topic": playback.counter_topic}
        )
        await stop.wait()
    log.info("stream counter stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("stream_counter", settings.log_level)
    if settings.metrics_port > 0:
        with contextlib.suppress(OSError):
            start_exporter(settings.metrics_host, settings.metrics_port)
    eventloop.run(serve())


if __name__ == "__main__":
    main()
