"""Async SQLAlchemy engine and sessions for a service's own schema."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import sqlalchemy.ext.asyncio
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.elements import TextClause


def normalize_url(url: str) -> str:
    """The synchronous psycopg 3 spelling of a PostgreSQL URL (Alembic, seeds and jobs run sync);
    the async and bare spellings are accepted too."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg_async://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


POOL_SIZE = 5


def create_engine(database_url: str, *, pool_size: int = POOL_SIZE, name: str = "main") -> AsyncEngine:
    """An async engine on psycopg 3; tables name their schema, so no search_path is needed.

    Small pools: five services, their replicas and the batch jobs share one PostgreSQL
    (max_connections 100 by default); add PgBouncer before raising this. Its pool's use is
    exported as `pool=<name>` (see PoolCollector).
    """
    # Looked up in its module at call time: tracing wraps it there (meshkit.telemetry).
    engine = sqlalchemy.ext.asyncio.create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
    measure_pool(engine.sync_engine, name)
    return engine


class PoolCollector(Collector):
    """`db_pool_connections_in_use` and `db_pool_connections_max` per named pool, read from the
    pools at scrape time (the database-connections alert divides the two)."""

    def __init__(self) -> None:
        self.engines: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = GaugeMetricFamily(
            "db_pool_connections_in_use", "Connections checked out of the pool", labels=["pool"]
        )
        most = GaugeMetricFamily(
            "db_pool_connections_max", "Connections the pool may open (size + overflow)", labels=["pool"]
        )
        for name, engine in list(self.engines.items()):
            pool = engine.pool
            if isinstance(pool, QueuePool):
                in_use.add_metric([name], pool.checkedout())
                most.add_metric([name], pool.size() + pool._max_overflow)
        yield in_use
        yield most


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def measure_pool(engine: Engine, name: str) -> None:
    """Export `engine`'s pool use under `pool=<name>` for as long as the engine lives."""
    POOLS.engines[name] = engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (servicers read them to build responses)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def transaction_lock(key: str) -> TextClause:
    """An exclusive advisory lock on `key`, held until the transaction ends: serialises writers of
    one thing (a user's devices, a user's exports) that no single row stands for."""
    return text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))").bindparams(key=key)


def single_statement_reads(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The sessions' engine in autocommit mode, for hot-path reads that are one statement.

    An ORM session wraps even one SELECT in BEGIN ... ROLLBACK: three round trips and the
    session machinery, about 1 ms of CPU per call. `async with reads.connect() as conn` runs
    the statement alone; it sees committed data only, which is all a single statement can see.
    """
    engine: AsyncEngine = sessions.kw["bind"]
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class SqlStore:
    """Base of a service's SQL store: the session factory its queries and transactions open, and
    `reads` for the hot path's single statements (see single_statement_reads)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.reads = single_statement_reads(sessions)
