"""library_svc's own settings (LIBRARY_* environment variables), beside the shared ones in meshkit.config."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class LibrarySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIBRARY_", case_sensitive=False, extra="ignore")

    # Track objects from catalog_svc are kept this many seconds for playlist pages (0 turns the
    # cache off). Tracks are never deleted, only edited, so the cost is metadata up to this old.
    track_cache_ttl_s: float = 60.0
    # At most this many track objects are cached (about 1-2 kB each).
    track_cache_size: int = 20_000


@lru_cache(maxsize=1)
def get_library_settings() -> LibrarySettings:
    return LibrarySettings()
