"""playback_svc's own settings (PLAYBACK_* environment variables), beside the shared ones in meshkit."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit import topics
from meshkit.secrets import Secret

# Offline key material for local development only (like the media signing key's default), derived
# from fixed labels so every local run and test agrees on it.
DEV_OFFLINE_MASTER = "local-development-only-offline-master-secret"
DEV_OFFLINE_SIGNING = (
    "dev-ed1:"
    + base64.b64encode(hashlib.sha256(b"local-development-only-offline-license-key").digest()).decode()
)


class PlaybackSettings(BaseSettings):
    """Every field can be set as ``PLAYBACK_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PLAYBACK_", case_sensitive=False, extra="ignore")

    # Run the stream counter inside playback_svc (off when a separate counter deployment runs it).
    counter_enabled: bool = True
    # The consumer group: every replica of the counter joins the same one and shares partitions.
    counter_group: str = "playback-stream-counter"
    counter_topic: str = topics.PLAYBACK_EVENTS.name
    counter_max_records: int = 1000
    # Lifetime of signed stream URLs.
    stream_url_ttl_s: int = 3600
    # How long a track's audio-file list is cached in-process (files change only on re-ingest).
    audio_files_cache_s: float = 30.0
    # Offline downloads (see playback_svc.offline_licenses): the master secret content keys are
    # derived from, and the Ed25519 license signing keys ("kid:<base64 seed>,..."; the first signs).
    offline_master_secret: str = DEV_OFFLINE_MASTER
    offline_signing_keys: str = DEV_OFFLINE_SIGNING

    def secrets(self) -> list[Secret]:
        """The keys playback_svc holds of its own (media URL signing is shared: meshkit.secrets)."""
        return [
            Secret("PLAYBACK_OFFLINE_MASTER_SECRET", self.offline_master_secret, DEV_OFFLINE_MASTER),
            Secret(
                "PLAYBACK_OFFLINE_SIGNING_KEYS", self.offline_signing_keys, DEV_OFFLINE_SIGNING, ring=True
            ),
        ]


@lru_cache(maxsize=1)
def get_playback_settings() -> PlaybackSettings:
    return PlaybackSettings()
