"""catalog schema: covering indexes for search's credit and album sources

A query that names an artist or album in full collects their tracks with popularity, which meant
a heap visit per track (2,000 tracks for the 96 artists called "Garden" in a generated
million-track catalog). With these, the walk is index-only:

- ``track_artists (artist_id, track_id)`` replaces ``(artist_id)``: an artist's track ids.
- ``tracks (album_id) INCLUDE (popularity, id)``: an album's tracks with their popularity.
- ``tracks (id) INCLUDE (popularity)``: a credited track's popularity.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 18:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_track_artists_artist_id_track_id ON catalog.track_artists (artist_id, track_id)"
    )
    op.execute("DROP INDEX catalog.ix_track_artists_artist_id")
    op.execute(
        "CREATE INDEX ix_tracks_album_id_popularity ON catalog.tracks (album_id) INCLUDE (popularity, id)"
    )
    op.execute("CREATE INDEX ix_tracks_id_popularity ON catalog.tracks (id) INCLUDE (popularity)")


def downgrade() -> None:
    op.execute("DROP INDEX catalog.ix_tracks_id_popularity")
    op.execute("DROP INDEX catalog.ix_tracks_album_id_popularity")
    op.execute("CREATE INDEX ix_track_artists_artist_id ON catalog.track_artists (artist_id)")
    op.execute("DROP INDEX catalog.ix_track_artists_artist_id_track_id")
