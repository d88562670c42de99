"""Seed entry point: playlists for a development mesh, written by library_svc's own code.

Track and owner ids are taken as given (they belong to catalog_svc and auth_svc); a playlist that
already exists (by id) is left as it is, so seeding twice changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from library_svc import models
from meshkit.db import normalize_url


@dataclass(frozen=True)
class SeedPlaylist:
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    public: bool
    track_ids: tuple[uuid.UUID, ...]


def load_playlists(database_url: str, playlists: Sequence[SeedPlaylist]) -> int:
    """Create the playlists that do not exist yet, items in the given order; returns how many."""
    engine = create_engine(normalize_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            wanted = [p.id for p in playlists]
            existing = set(session.scalars(select(models.Playlist.id).where(models.Playlist.id.in_(wanted))))
            missing = [p for p in playlists if p.id not in existing]
            for playlist in missing:
                session.add(
                    models.Playlist(
                        id=playlist.id,
                        owner_id=playlist.owner_id,
                        name=playlist.name,
                        description=playlist.description,
                        is_public=playlist.public,
                        item_count=len(playlist.track_ids),
                    )
                )
                session.flush()
                session.add_all(
                    models.PlaylistItem(
                        playlist_id=playlist.id, track_id=track_id, position=i, added_by=playlist.owner_id
                    )
                    for i, track_id in enumerate(playlist.track_ids)
                )
        return len(missing)
    finally:
        engine.dispose()
