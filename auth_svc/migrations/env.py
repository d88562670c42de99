"""Alembic environment for auth_svc: its own schema, its own alembic_version (see meshkit.migrate)."""

from auth_svc.models import SCHEMA, Base
from meshkit.migrate import run_env

run_env(SCHEMA, Base.metadata)
