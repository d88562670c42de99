"""auth_svc's own settings (AUTH_* environment variables), beside the shared ones in meshkit.config."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from auth_svc import limits


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", case_sensitive=False, extra="ignore")

    # Sessions: opaque tokens in Redis with a sliding TTL (4 h), also sent as a cookie.
    session_ttl_s: int = 14400
    # Adds `Secure` to the session cookie; on wherever clients reach Envoy over HTTPS.
    session_cookie_secure: bool = False
    # bcrypt cost factor for new password hashes (12 is bcrypt's default, ~0.2 s here).
    bcrypt_rounds: int = 12
    # The edge's rate limits (counted by ext_authz): the limits file (categories, limits, windows,
    # scopes) and the Redis key prefix (tests give each run its own). When Redis cannot count
    # within ratelimit_timeout_s: fail open (allow, log), or closed (503).
    ratelimit_config: Path = limits.DEFAULT_PATH
    ratelimit_key_prefix: str = "ratelimit"
    ratelimit_fail_open: bool = True
    ratelimit_timeout_s: float = 0.25


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    return AuthSettings()
