"""Settings shared by every process, read from environment variables.

Defaults describe the local mesh that `make up` starts, so a service started alone
(`python -m catalog_svc`) finds its neighbours without any configuration.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.services import DEFAULT_PORTS, INTERNAL_PORTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Committed for the local mesh and tests only: a process in production refuses to start with it.
DEV_MEDIA_SIGNING_KEYS = "dev-1:local-development-only-media-signing-key"


class Settings(BaseSettings):
    """Process settings. Every field can be overridden by an environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/spotify"
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap: str = "127.0.0.1:9092"

    # Where the other processes are called: a gRPC service's internal port (every RPC; its public
    # port serves Envoy the routed ones), the media origin's only one.
    catalog_addr: str = f"127.0.0.1:{INTERNAL_PORTS['catalog_svc']}"
    playback_addr: str = f"127.0.0.1:{INTERNAL_PORTS['playback_svc']}"
    library_addr: str = f"127.0.0.1:{INTERNAL_PORTS['library_svc']}"
    auth_addr: str = f"127.0.0.1:{INTERNAL_PORTS['auth_svc']}"
    rec_addr: str = f"127.0.0.1:{INTERNAL_PORTS['rec_svc']}"
    media_addr: str = f"127.0.0.1:{DEFAULT_PORTS['media_svc']}"

    # The public base URL clients see (Envoy); used for Spotify `href`s and stream URLs.
    public_base_url: str = "http://127.0.0.1:8080"

    # Listen address (gRPC, or HTTP for media_svc); empty means 127.0.0.1:<the service's default port>.
    listen_addr: str = ""
    # A gRPC service's internal listen address; empty means 127.0.0.1:<its internal port>, or an
    # ephemeral port beside LISTEN_ADDR when that asks for one (port 0).
    internal_listen_addr: str = ""
    # Prometheus exporter port; 0 means the service's default, -1 disables it.
    metrics_port: int = 0
    # False: no per-request metrics and no exporter (bench.observability_cost measures the difference).
    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"

    storage_root: Path = PROJECT_ROOT / "data" / "objects"
    # The web player's built bundle (web/, built by make install), served by media_svc under /app/.
    web_root: Path = PROJECT_ROOT / "web" / "dist"
    # Seconds a SIGTERM'd server lets in-flight RPCs finish.
    shutdown_grace_s: float = 10.0
    # Deadline of outgoing RPCs to other services, in seconds.
    rpc_timeout_s: float = 5.0

    log_level: str = "INFO"
    # OTLP endpoint for traces; tracing is wired either way, exporting only when set.
    otel_exporter_otlp_endpoint: str = ""
    # Share of the traces a service starts itself that are kept (Envoy decides for requests).
    trace_sample_ratio: float = 1.0
    # Prometheus Pushgateway (http://host:port) batch jobs push their outcome to; empty: no push.
    pushgateway_url: str = ""

    # Whether a service that holds user data erases it on users.deleted.v1 (meshkit.user_deletion).
    # On everywhere; a test that starts one service in-process beside the mesh turns it off, or it
    # would join the mesh's consumer group and take its share of deletions.
    user_deletions: bool = True

    # HMAC keys for signed media URLs: "kid1:secret1,kid2:secret2"; the first signs, all verify.
    media_signing_keys: str = Field(default=DEV_MEDIA_SIGNING_KEYS)

    # "production" (the default, so that a forgotten setting fails safe): every process refuses to
    # start while a key it uses is missing or one of the committed development keys
    # (meshkit.secrets). `make up` and the tests run "development".
    mesh_env: Literal["production", "development"] = "production"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
