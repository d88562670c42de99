"""playback_svc bootstrap: database, Redis, channels to catalog, library and auth, the Kafka producer,
the domain objects and the servicer, and the stream counter (a consumer group) in the background.

The counter's ``start()`` returns at once: the consumer group join (about 5 s on tansu) happens
on the consumer's own thread, so the service reports SERVING without waiting for it. On SIGTERM
the stack unwinds in reverse: the counter stops first (its in-flight batch still has the
database and the loop), then the producer, channels, Redis and the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit import db, evictions
from meshkit.config import Settings
from meshkit.idempotency import Idempotency
from meshkit.resources import Resources
from meshkit.secrets import media_signing
from meshkit.server import Setup, run
from playback_svc.clients import Accounts, Catalog, Contexts
from playback_svc.counter.runner import CounterRunner, build_runner
from playback_svc.events import PlaybackEvents
from playback_svc.history import History
from playback_svc.history_store import HistoryStore
from playback_svc.offline import Offline
from playback_svc.offline_licenses import OfflineKeys
from playback_svc.offline_store import OfflineStore
from playback_svc.player import Player
from playback_svc.player_store import PlayerStore
from playback_svc.royalties import Royalties
from playback_svc.royalties_store import RoyaltiesStore
from playback_svc.servicer import PlaybackServicer
from playback_svc.settings import PlaybackSettings, get_playback_settings
from playback_svc.streams import StreamUrls
from playback_svc.user_data_store import UserDataStore

SERVICE = "playback_svc"
POOL_SIZE = 10


def make_setup(
    playback_settings: PlaybackSettings | None = None,
    *,
    on_counter: Callable[[CounterRunner], None] | None = None,
) -> Setup:
    """The server setup, with playback's own settings injectable; ``on_counter`` (tests) gets the
    started counter, if it runs in this process."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
        playback = playback_settings or get_playback_settings()
        opened = Resources(settings, stack)
        engine, redis_client = opened.database(POOL_SIZE), opened.redis()
        catalog_channel = opened.channel(settings.catalog_addr)
        auth_channel = opened.channel(settings.auth_addr)
        library_channel = opened.channel(settings.library_addr)
        producer = opened.producer(SERVICE)

        sessions = db.session_factory(engine)
        catalog = Catalog.cached(catalog_channel, audio_files_ttl_s=playback.audio_files_cache_s)
        evictions.follow(redis_client, catalog.client, stack)  # a takedown shows at once
        idempotency = Idempotency(redis_client, namespace="playback-idem")
        base, url_ttl_s = settings.public_base_url, playback.stream_url_ttl_s
        keys = OfflineKeys.parse(playback.offline_master_secret, playback.offline_signing_keys)
        user_data = UserDataStore(sessions)
        servicer = PlaybackServicer(
            streams=StreamUrls(catalog, base, url_ttl_s),
            player=Player(
                PlayerStore(sessions), catalog, Contexts(catalog.client, library_channel), idempotency
            ),
            history=History(HistoryStore(sessions), catalog),
            events=PlaybackEvents(producer),
            royalties=Royalties(RoyaltiesStore(sessions), Accounts(auth_channel)),
            offline=Offline(
                OfflineStore(sessions), catalog, keys, idempotency, settings.storage_root, base, url_ttl_s
            ),
            public_base_url=base,
            export=user_data.export_user,
        )
        playback_pb2_grpc.add_PlaybackServiceServicer_to_server(servicer, server)
        opened.user_deletions(
            SERVICE, lambda user: user_data.erase_user(user.user_id, user.pseudonym), auth_channel
        )
        if playback.counter_enabled:
            counted = Catalog.cached(
                catalog_channel, audio_files_ttl_s=playback.audio_files_cache_s, include_unavailable=True
            )
            runner = build_runner(settings, playback, engine, redis_client, counted, producer)
            runner.start()
            stack.push_async_callback(runner.stop)
            if on_counter is not None:
                on_counter(runner)
        return [playback_pb2.DESCRIPTOR.services_by_name["PlaybackService"].full_name]

    return setup


def main() -> None:
    run(
        SERVICE,
        make_setup(),
        secrets=lambda settings: [media_signing(settings), *get_playback_settings().secrets()],
    )
