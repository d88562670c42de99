"""Playlist rules that do not depend on storage or transport."""

from __future__ import annotations

import uuid

from library_svc.models import Playlist
from meshkit.context import Caller


def can_view(playlist: Playlist, collaborators: list[uuid.UUID], caller: Caller) -> bool:
    """Public playlists are visible to everyone; others only to their owner and collaborators."""
    if playlist.is_public:
        return True
    return caller.user_id is not None and (
        caller.user_id == playlist.owner_id or caller.user_id in collaborators
    )


def snapshot_id(playlist: Playlist) -> str:
    """The opaque version string clients echo back on reorder and delete."""
    return f"{playlist.id.hex[:8]}{playlist.snapshot_version:08d}"
