"""What the mesh has stored, as a count and a checksum per table: refused requests must change none.

Tables and columns that background consumers write (stream counts, popularity, outboxes, rec's
history) and the audit log (refusals are audited on purpose) are left out by default, so a
comparison sees only what requests could have written.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

SCHEMAS = ("auth", "catalog", "library", "playback", "rec")
# Written by consumers of Kafka topics or by outbox relays, whoever made the request.
BACKGROUND_TABLES = frozenset(
    {
        "auth.audit_logs",
        "catalog.applied_stream_events",
        "catalog.artist_listeners",
        "catalog.outbox_events",
        "playback.counted_streams",
        "playback.track_stream_counts",
        "playback.listening_history",
        "playback.royalty_attributions",
        "playback.outbox",
        *(
            f"rec.{table}"
            for table in ("discover_weekly", "index_versions", "events_applied", "listens", "skips", "tracks")
        ),
    }
)
# Columns the stream-count projection keeps up to date in catalog rows.
BACKGROUND_COLUMNS = ("stream_count", "popularity", "monthly_listeners")

State = dict[str, tuple[int, str]]


def snapshot(database_url: str, skip: Iterable[str] = BACKGROUND_TABLES) -> State:
    """{"schema.table": (rows, md5 of the rows)} for every table of the services' schemas."""
    skipped = set(skip)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = [
                f"{schema}.{name}"
                for schema, name in conn.execute(
                    sa.text(
                        "SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE' ORDER BY 1, 2"
                    ),
                    {"schemas": list(SCHEMAS)},
                )
            ]
            dropped = ", ".join(f"'{column}'" for column in BACKGROUND_COLUMNS)
            state: State = {}
            for table in tables:
                if table in skipped:
                    continue
                rows, digest = conn.execute(
                    sa.text(
                        f"SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) FROM "
                        f"(SELECT (to_jsonb(t) - ARRAY[{dropped}])::text AS r FROM {table} t) rows"
                    )
                ).one()
                state[table] = (int(rows), str(digest))
            return state
    finally:
        engine.dispose()


def changed(before: State, after: State) -> list[str]:
    """The tables whose rows differ."""
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
