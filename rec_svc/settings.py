"""rec_svc's own settings (REC_* environment variables), beside the shared ones in meshkit.config."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.config import PROJECT_ROOT


class RecSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REC_", case_sensitive=False, extra="ignore")

    # Where the batch job writes version directories and the service loads them from.
    index_dir: Path = PROJECT_ROOT / "data" / "rec-indexes"
    # How often the service checks rec.index_versions for a newly activated version; 0 disables.
    reload_poll_s: float = 30.0
    # How often the service applies catalog changes another replica consumed (rec.tracks rows
    # changed since its last look) to its live index; 0 disables.
    live_sync_s: float = 2.0
    # Connections per process (and as many again in overflow): requests hold one only briefly.
    db_pool_size: int = 4
    # Run the streams.counted.v1 / playback.events.v1 (skips) / catalog.changes.v1 consumer group
    # inside the service.
    consumers: bool = True
    consumer_group: str = "rec_svc"
    # hnswlib: graph degree, build-time and query-time candidate list sizes. On 1M clustered
    # 128-d vectors (python -m bench.rec_ann) ef=48 was the smallest with recall@10 >= 0.95 (0.963);
    # 64 leaves headroom. Queries for more than ef neighbours raise ef to k for that query.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 64
    build_threads: int = 2
    # Track objects kept in-process to fill in lists (Discover Weekly served from the store costs
    # one BatchGetTracks of 30 otherwise: ~2 ms of its ~5 ms); 0 disables. A renamed track shows
    # the old name for at most this long, as in library_svc.
    track_cache_ttl_s: float = 60.0
    track_cache_size: int = 20_000
    # A stored Discover Weekly older than this is regenerated on the next request.
    dw_max_age_days: float = 7.0
    # Version directories kept on disk (the active one is never removed).
    keep_versions: int = 3


@lru_cache(maxsize=1)
def get_rec_settings() -> RecSettings:
    return RecSettings()
