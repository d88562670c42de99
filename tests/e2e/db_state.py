"""What the mesh has stored, as a count and a checksum per table: refused requests must change none.

Tables and columns that background consumers write (stream counts, popularity, outboxes, rec's
history, a data export's progress) and the audit log (refusals are audited on purpose) are left
out by default, so a comparison sees only what requests could have written.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

SCHEMAS = ("auth", "catalog", "library", "playback", "rec")
# Written by consumers of Kafka topics or by outbox relays, whoever made the request.
BACKGROUND_TABLES = frozenset(
    {
        "auth.audit_logs",
        "auth.deletion_confirmations",
        "auth.outbox_events",
        "catalog.applied_stream_events",
        "catalog.artist_listeners",
        "catalog.erased_users",
        "catalog.outbox_events",
        "playback.counted_streams",
        "playback.erased_users",
        "playback.track_stream_counts",
        "playback.listening_history",
        "playback.royalty_attributions",
        "playback.outbox",
        *(
            f"rec.{table}"
            for table in (
                "discover_weekly",
                "index_versions",
                "events_applied",
                "listens",
                "skips",
                "tracks",
                "erased_users",
            )
        ),
    }
)
# Columns the stream-count projection keeps up to date in catalog rows.
BACKGROUND_COLUMNS = ("stream_count", "popularity", "monthly_listeners")
# Columns a worker writes in rows a request created: the request's own columns are still compared,
# so a refusal that creates or alters a job is caught while the job's progress is not.
WORKER_COLUMNS = {
    "auth.data_exports": (
        "state",
        "completed_at",
        "attempts",
        "next_attempt_at",
        "error",
        "archive",
        "size_bytes",
    ),
}

State = dict[str, tuple[int, str]]


class Snapshots:
    """Snapshots of one database over one connection, in one statement each (the fuzz tests take
    one after every rejected request)."""

    def __init__(self, database_url: str, skip: Iterable[str] = BACKGROUND_TABLES) -> None:
        self.engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        self.conn = self.engine.connect()
        skipped = set(skip)
        tables = [
            f"{schema}.{name}"
            for schema, name in self.conn.execute(
                sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE' ORDER BY 1, 2"
                ),
                {"schemas": list(SCHEMAS)},
            )
            if f"{schema}.{name}" not in skipped
        ]

        def dropped(table: str) -> str:
            columns = (*BACKGROUND_COLUMNS, *WORKER_COLUMNS.get(table, ()))
            return ", ".join(f"'{column}'" for column in columns)

        self.query = sa.text(
            " UNION ALL ".join(
                f"SELECT '{table}', count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) FROM "
                f"(SELECT (to_jsonb(t) - ARRAY[{dropped(table)}])::text AS r FROM {table} t) rows"
                for table in tables
            )
        )

    def take(self) -> State:
        """{"schema.table": (rows, md5 of the rows)} now; each read ends its transaction."""
        rows = self.conn.execute(self.query).all()
        self.conn.rollback()
        return {str(row[0]): (int(row[1]), str(row[2])) for row in rows}

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def snapshot(database_url: str, skip: Iterable[str] = BACKGROUND_TABLES) -> State:
    """{"schema.table": (rows, md5 of the rows)} for every table of the services' schemas."""
    snapshots = Snapshots(database_url, skip)
    try:
        return snapshots.take()
    finally:
        snapshots.close()


def changed(before: State, after: State) -> list[str]:
    """The tables whose rows differ."""
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
