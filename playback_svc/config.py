"""playback_svc's own settings (``PLAYBACK_*`` environment variables), next to meshkit's shared ones.

Kept here rather than in ``meshkit.config`` because they are this service's business: which
consumer group counts streams, and a crash hook that only the exactly-once tests turn on.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from playback_svc.offline.keys import DEV_MASTER, DEV_SIGNING

EVENTS_TOPIC = "playback.events.v1"
COUNTED_TOPIC = "streams.counted.v1"


class PlaybackSettings(BaseSettings):
    """Every field can be set as ``PLAYBACK_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PLAYBACK_", case_sensitive=False, extra="ignore")

    # Run the stream counter inside playback_svc (off when a separate counter deployment runs it).
    counter_enabled: bool = True
    # The consumer group: every replica of the counter joins the same one and shares partitions.
    counter_group: str = "playback-stream-counter"
    counter_topic: str = EVENTS_TOPIC
    counter_max_records: int = 1000
    # Test hook: the standalone runner exits abruptly (os._exit) right after the N-th database
    # commit, before Kafka offsets are committed. 0 = never. Never set it in production.
    counter_crash_after_commits: int = 0
    # Lifetime of signed stream URLs (the issue asks for one hour).
    stream_url_ttl_s: int = 3600
    # How long a track's audio-file list is cached in-process (files change only on re-ingest).
    audio_files_cache_s: float = 30.0
    # Offline downloads (see playback_svc.offline.keys): the master secret content keys are derived
    # from, and the Ed25519 license signing keys ("kid:<base64 seed>,..."; the first signs).
    # The defaults are development-only values.
    offline_master_secret: str = DEV_MASTER
    offline_signing_keys: str = DEV_SIGNING


@lru_cache(maxsize=1)
def get_playback_settings() -> PlaybackSettings:
    return PlaybackSettings()
