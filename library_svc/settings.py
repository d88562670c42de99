"""library_svc's own settings on top of the shared ones (environment variables, same names)."""

from __future__ import annotations

from meshkit.config import Settings


class LibrarySettings(Settings):
    # Track objects from catalog_svc are kept this many seconds for playlist pages (0 turns the
    # cache off). Tracks are never deleted, only edited, so the cost is metadata up to this old.
    library_track_cache_ttl_s: float = 60.0
    # At most this many track objects are cached (about 1-2 kB each).
    library_track_cache_size: int = 20_000

    @classmethod
    def of(cls, settings: Settings) -> LibrarySettings:
        """`settings` with the library fields added (from the environment unless already there)."""
        if isinstance(settings, cls):
            return settings
        return cls(**settings.model_dump())
