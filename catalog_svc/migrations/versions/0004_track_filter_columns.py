"""catalog schema: per-track copies of what search filters test, kept by triggers

`genre:`, `artist:` and `year:` describe a track through other rows (its album's genres and
release date, its credited artists' names and genres). Checked row by row, "devil genre:k-pop"
on a million tracks visits every one of the 14,000 "devil" titles, joins its album and probes
its credits, to keep 300. Copied onto the track and indexed, the filter is one more index
whose bitmap PostgreSQL intersects with the title's before reading any row.

- ``tracks.filter_genres``: the album's genres and every credited artist's, sorted, distinct.
- ``tracks.filter_artists``: the credited artists' names folded like ``artists.search_vector``
  (search still checks that one artist matches all the words: this only narrows).
- ``tracks.filter_release_date``: the album's release date.

``catalog.refresh_track_filters(ids)`` recomputes them; triggers call it whenever a source
changes (a track's album, its credits, an album's genres or date, an artist's name or
genres), so no write path can forget. Bulk loaders may disable triggers and call it once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFRESH = """
CREATE FUNCTION catalog.refresh_track_filters(track_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE catalog.tracks t
    SET filter_genres = f.genres, filter_artists = f.artists, filter_release_date = f.release_date
    FROM (
        SELECT tr.id, al.release_date,
               ARRAY(
                   SELECT DISTINCT g FROM (
                       SELECT unnest(al.genres)
                       UNION ALL
                       SELECT unnest(a.genres) FROM catalog.track_artists ta
                       JOIN catalog.artists a ON a.id = ta.artist_id WHERE ta.track_id = tr.id
                   ) AS genre(g) ORDER BY g
               ) AS genres,
               to_tsvector('simple', catalog.immutable_unaccent(lower(coalesce((
                   SELECT string_agg(a.name, ' ' ORDER BY ta.position) FROM catalog.track_artists ta
                   JOIN catalog.artists a ON a.id = ta.artist_id WHERE ta.track_id = tr.id
               ), '')))) AS artists
        FROM catalog.tracks tr JOIN catalog.albums al ON al.id = tr.album_id
        WHERE tr.id = ANY(track_ids)
    ) f
    WHERE t.id = f.id
      AND (t.filter_genres, t.filter_artists, t.filter_release_date)
          IS DISTINCT FROM (f.genres, f.artists, f.release_date)
$$
"""

# (trigger function, table, events, which tracks to refresh)
TRIGGERS = (
    ("track_filters_from_track", "tracks", "INSERT OR UPDATE OF album_id", "ARRAY[NEW.id]"),
    (
        "track_filters_from_credit",
        "track_artists",
        "INSERT OR UPDATE OR DELETE",
        "ARRAY[CASE WHEN TG_OP = 'DELETE' THEN OLD.track_id ELSE NEW.track_id END]",
    ),
    (
        "track_filters_from_album",
        "albums",
        "UPDATE OF genres, release_date",
        "ARRAY(SELECT id FROM catalog.tracks WHERE album_id = NEW.id)",
    ),
    (
        "track_filters_from_artist",
        "artists",
        "UPDATE OF name, genres",
        "ARRAY(SELECT track_id FROM catalog.track_artists WHERE artist_id = NEW.id)",
    ),
)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE catalog.tracks "
        "ADD COLUMN filter_genres text[] NOT NULL DEFAULT '{}', "
        "ADD COLUMN filter_artists tsvector NOT NULL DEFAULT ''::tsvector, "
        "ADD COLUMN filter_release_date date"
    )
    op.execute(REFRESH)
    for name, table, events, ids in TRIGGERS:
        op.execute(
            f"CREATE FUNCTION catalog.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN PERFORM catalog.refresh_track_filters({ids}); RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON catalog.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION catalog.{name}()"
        )
    op.execute("SELECT catalog.refresh_track_filters(ARRAY(SELECT id FROM catalog.tracks))")
    op.execute("CREATE INDEX ix_tracks_filter_genres ON catalog.tracks USING gin (filter_genres)")
    op.execute("CREATE INDEX ix_tracks_filter_artists ON catalog.tracks USING gin (filter_artists)")
    op.execute("CREATE INDEX ix_tracks_filter_release_date ON catalog.tracks (filter_release_date)")


def downgrade() -> None:
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON catalog.{table}")
        op.execute(f"DROP FUNCTION catalog.{name}()")
    op.execute("DROP FUNCTION catalog.refresh_track_filters(uuid[])")
    op.execute(
        "ALTER TABLE catalog.tracks DROP COLUMN filter_genres, DROP COLUMN filter_artists, "
        "DROP COLUMN filter_release_date"
    )
