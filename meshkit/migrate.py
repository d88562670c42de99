"""Alembic runner: one migration environment per service, each in its own PostgreSQL schema.

Every service keeps its migrations in ``<service>/migrations`` (located through the import
system, never the working directory) and records its revision in ``<schema>.alembic_version``,
so the five histories are independent even though they share one database.

    python -m meshkit.migrate [--url URL] [service ...]      # upgrade (default: all services)
    python -m meshkit.migrate --revision -1 catalog_svc        # any alembic revision spec
    python -m meshkit.migrate --expand-only                    # before a rolling deploy (see PHASE)

Upgrading twice is a no-op. Concurrent runs for the same service (two replicas starting at
once) are serialised by a PostgreSQL advisory lock taken in :func:`run_env`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config

from meshkit import services as registry
from meshkit.db import normalize_url
from meshkit.jobs import run_job

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# The services with a schema, from the registry (meshkit.services), in its order.
SCHEMAS = registry.SCHEMAS
SERVICES = tuple(SCHEMAS)
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/spotify"


def database_url_from_env() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def migrations_dir(service: str) -> Path:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    spec = importlib.util.find_spec(service)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"cannot locate package {service!r}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "migrations"
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"{service} has no migrations/env.py")


def make_config(service: str, database_url: str) -> Config:
    url = normalize_url(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    # ConfigParser interpolates '%': escape it (URL-encoded passwords); env.py reads attributes first.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    cfg.attributes["service"] = service
    cfg.attributes["schema"] = SCHEMAS[service]
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    log.info("migrating %s to %s", service, revision)
    command.upgrade(make_config(service, database_url), revision)


def downgrade(service: str, database_url: str, revision: str = "base") -> None:
    log.info("downgrading %s to %s", service, revision)
    command.downgrade(make_config(service, database_url), revision)


# A migration that removes what the previous release may still use says `PHASE = "contract"`;
# every other one only adds (expand). tests/meshkit/test_migration_phases.py holds that.
CONTRACT = "contract"


def expand_head(service: str) -> str:
    """The newest revision of `service` below its trailing contract migrations: the schema a
    rolling deploy migrates to before the new release starts (both releases run on it); the
    contract migrations follow once the previous release is gone."""
    from alembic.script import Script, ScriptDirectory

    scripts = ScriptDirectory.from_config(make_config(service, DEFAULT_DATABASE_URL))
    revision: Script | None = scripts.get_revision("head")
    while revision is not None and getattr(revision.module, "PHASE", "expand") == CONTRACT:
        down = revision.down_revision
        revision = scripts.get_revision(down) if isinstance(down, str) else None
    return revision.revision if revision is not None else "base"


def upgrade_all(database_url: str, services: Iterable[str] = SERVICES) -> None:
    for service in services:
        upgrade(service, database_url)


def downgrade_all(database_url: str, services: Iterable[str] = SERVICES) -> None:
    for service in reversed(tuple(services)):
        downgrade(service, database_url)


# ---------------------------------------------------------------------------------------------
# Shared body of every <service>/migrations/env.py
# ---------------------------------------------------------------------------------------------


def _advisory_key(schema: str) -> int:
    # pg_advisory_lock takes a signed bigint; crc32 is stable across processes (hash() is not).
    return zlib.crc32(f"alembic:{schema}".encode())


def _include_name(schema: str):
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    return include_name


def _configure(context: Any, schema: str, metadata: MetaData, **kw: Any) -> None:
    context.configure(
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=_include_name(schema),
        compare_type=True,
        compare_server_default=False,
        **kw,
    )


def _run_online(context: Any, schema: str, metadata: MetaData, connection: Connection) -> None:
    from sqlalchemy import text

    key = _advisory_key(schema)
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    try:
        # The version table lives in the schema, so the schema must exist before alembic looks.
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        _configure(context, schema, metadata, connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()


def run_env(schema: str, metadata: MetaData) -> None:
    """Called from ``<service>/migrations/env.py``; works with alembic's CLI too."""
    from alembic import context
    from sqlalchemy import create_engine, pool

    config = context.config
    url = (
        config.attributes.get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
    url = normalize_url(url)

    if context.is_offline_mode():
        _configure(context, schema, metadata, url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if connection is not None:
        _run_online(context, schema, metadata, connection)
        return

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run_online(context, schema, metadata, conn)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshkit.migrate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "services", nargs="*", metavar="service", help=f"default: all of {', '.join(SERVICES)}"
    )
    parser.add_argument(
        "--url", default=None, help=f"database URL (env DATABASE_URL, default {DEFAULT_DATABASE_URL})"
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--downgrade", action="store_true", help="downgrade to --revision (default base)")
    parser.add_argument(
        "--expand-only",
        action="store_true",
        help="stop below each service's trailing contract migrations (before a rolling deploy; run "
        "again without it once the previous release is gone)",
    )
    args = parser.parse_args(argv)
    if args.expand_only and (args.downgrade or args.revision != "head"):
        parser.error("--expand-only goes up to each service's expand head: no --revision or --downgrade")

    url = args.url or database_url_from_env()
    services = args.services or list(SERVICES)
    unknown = [s for s in services if s not in SERVICES]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")

    def migrate() -> dict[str, object]:
        if args.downgrade:
            revision = "base" if args.revision == "head" else args.revision
            for service in reversed(services):
                downgrade(service, url, revision)
            return {"downgraded": services, "revision": revision}
        if args.expand_only:
            targets = {service: expand_head(service) for service in services}
            for service, revision in targets.items():
                upgrade(service, url, revision)
            return {"upgraded": services, "revisions": targets}
        for service in services:
            upgrade(service, url, args.revision)
        return {"upgraded": services, "revision": args.revision}

    return run_job("migrate", "migrate", migrate)


if __name__ == "__main__":
    sys.exit(main())
