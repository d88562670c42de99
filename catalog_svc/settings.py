"""catalog_svc's own settings (CATALOG_* environment variables), beside the shared ones in meshkit.config."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class CatalogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", case_sensitive=False, extra="ignore")

    # Consume streams.counted.v1 into stream counts (off for tools that only serve reads).
    stream_consumer: bool = True
    # Consumer group of that projection; every replica shares it.
    stream_group: str = "catalog_svc.stream-counts"
    # How often the change-event outbox is swept even without a write waking it, in seconds.
    outbox_interval_s: float = 5.0
    # Largest audio upload IngestTrackAudio accepts (a 20-minute WAV is about 210 MB).
    max_upload_bytes: int = 256 * 1024 * 1024


@lru_cache(maxsize=1)
def get_catalog_settings() -> CatalogSettings:
    return CatalogSettings()
