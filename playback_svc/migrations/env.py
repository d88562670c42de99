"""Alembic environment for playback_svc: its own schema, its own alembic_version (see meshkit.migrate)."""

from meshkit.migrate import run_env
from playback_svc.models import SCHEMA, Base

run_env(SCHEMA, Base.metadata)
