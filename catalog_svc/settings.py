"""catalog_svc's own settings on top of the shared ones (environment variables, same names)."""

from __future__ import annotations

from catalog_svc.streams import DEFAULT_GROUP
from meshkit.config import Settings


class CatalogSettings(Settings):
    # Consume streams.counted.v1 into stream counts (off for tools that only serve reads).
    catalog_stream_consumer: bool = True
    # Consumer group of that projection; every replica shares it.
    catalog_stream_group: str = DEFAULT_GROUP
    # How often the change-event outbox is swept even without a write waking it, in seconds.
    catalog_outbox_interval_s: float = 5.0
    # Largest audio upload IngestTrackAudio accepts (a 20-minute WAV is about 210 MB).
    catalog_max_upload_bytes: int = 256 * 1024 * 1024

    @classmethod
    def of(cls, settings: Settings) -> CatalogSettings:
        """`settings` with the catalog fields added (from the environment unless already there)."""
        if isinstance(settings, cls):
            return settings
        return cls(**settings.model_dump())
