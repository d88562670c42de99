"""Library rules without I/O, shared by the domain modules: who sees and edits a playlist, versions,
sharing flags, URIs and limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from library_svc.models import PLAYLIST_DESCRIPTION_MAX, PLAYLIST_NAME_MAX
from library_svc.store import PlaylistRow
from meshkit import ids
from meshkit.context import Caller
from meshkit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

MAX_PLAYLIST_ITEMS = 10_000
MAX_URIS_PER_WRITE = 100  # Spotify's limit for add, replace and remove
MAX_LIBRARY_URIS = 40  # Spotify's limit for /v1/me/library and its contains check
LIBRARY_TYPES = ("track", "album", "artist", "playlist")


def can_view(playlist: PlaylistRow, collaborators: Iterable[uuid.UUID], caller: Caller) -> bool:
    """Public playlists are visible to everyone; others only to their owner and collaborators."""
    if playlist.is_public:
        return True
    return caller.user_id is not None and (
        caller.user_id == playlist.owner_id or caller.user_id in collaborators
    )


def can_edit(playlist: PlaylistRow, collaborators: Iterable[uuid.UUID], caller: Caller) -> bool:
    """The owner, or a collaborator while the playlist is collaborative."""
    if caller.user_id is None:
        return False
    if caller.user_id == playlist.owner_id:
        return True
    return playlist.is_collaborative and caller.user_id in collaborators


def require_view(
    playlist: PlaylistRow | None, collaborators: Iterable[uuid.UUID], caller: Caller
) -> PlaylistRow:
    """The playlist, or NOT_FOUND: a private playlist does not exist for anyone who may not see it."""
    if playlist is None or not can_view(playlist, collaborators, caller):
        raise NotFound("playlist not found")
    return playlist


def require_edit(
    playlist: PlaylistRow | None, collaborators: Iterable[uuid.UUID], caller: Caller
) -> PlaylistRow:
    """The playlist if the caller may edit its items; NOT_FOUND if they cannot see it, else 403."""
    members = set(collaborators)
    caller.require_user()
    visible = require_view(playlist, members, caller)
    if not can_edit(visible, members, caller):
        raise PermissionDenied("only the owner and collaborators can edit this playlist")
    return visible


def require_owner(
    playlist: PlaylistRow | None, collaborators: Iterable[uuid.UUID], caller: Caller
) -> PlaylistRow:
    """The playlist if the caller owns it (sharing settings, collaborators); NOT_FOUND or 403 otherwise."""
    caller.require_user()
    visible = require_view(playlist, collaborators, caller)
    if visible.owner_id != caller.user_id:
        raise PermissionDenied("only the playlist's owner can do this")
    return visible


def snapshot_id(playlist: PlaylistRow) -> str:
    """The opaque version string clients echo back on reorder and delete."""
    return f"{playlist.id.hex[:8]}{playlist.snapshot_version:08d}"


def check_snapshot(playlist: PlaylistRow, given: str) -> None:
    """A change based on an older version is refused (ABORTED, HTTP 409) so nothing is clobbered.

    An empty snapshot means "whatever is current": a reorder without one is last-writer-wins, and
    a remove without one is a plain idempotent delete.
    """
    if given and given != snapshot_id(playlist):
        raise Aborted(
            f"snapshot_id {given!r} is stale: the playlist is at {snapshot_id(playlist)!r}; "
            "reload it and retry"
        )


@dataclass(frozen=True)
class Sharing:
    """A playlist's public and collaborative flags."""

    public: bool
    collaborative: bool


def resolve_sharing(current: Sharing | None, public: bool | None, collaborative: bool | None) -> Sharing:
    """The flags after a create (current None) or update; collaborative playlists are never public.

    Spotify's rule: to make a playlist collaborative it must not be public. Asking for both
    explicitly is an error; asking for collaborative alone makes it non-public.
    """
    base = current or Sharing(public=True, collaborative=False)
    wants_collaborative = base.collaborative if collaborative is None else collaborative
    if wants_collaborative and public is True:
        raise InvalidArgument("a collaborative playlist cannot be public: set public to false")
    wants_public = base.public if public is None else public
    if wants_collaborative:
        wants_public = False
    return Sharing(public=wants_public, collaborative=wants_collaborative)


def clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name: a playlist needs a name")
    if len(name) > PLAYLIST_NAME_MAX:
        raise InvalidArgument(f"name: at most {PLAYLIST_NAME_MAX} characters, got {len(name)}")
    return name


def clean_description(description: str) -> str | None:
    """The description to store; empty means none."""
    if len(description) > PLAYLIST_DESCRIPTION_MAX:
        raise InvalidArgument(
            f"description: at most {PLAYLIST_DESCRIPTION_MAX} characters, got {len(description)}"
        )
    return description or None


def split_uris(values: Iterable[str]) -> list[str]:
    """URIs from repeated fields or comma-separated query values (`?uris=a,b` arrives as one value)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_track_uris(values: Iterable[str], *, limit: int = MAX_URIS_PER_WRITE) -> list[uuid.UUID]:
    """Track ids from `spotify:track:<id>` URIs, in order, duplicates dropped (first one wins).

    Every malformed URI is reported at once, so a client fixes its request in one round trip.
    """
    uris = split_uris(values)
    if len(uris) > limit:
        raise InvalidArgument(f"uris: at most {limit} per request, got {len(uris)}")
    track_ids: list[uuid.UUID] = []
    bad: list[str] = []
    for uri in uris:
        try:
            track_ids.append(ids.parse_uri(uri, expected="track")[1])
        except InvalidArgument:
            bad.append(uri)
    if bad:
        raise InvalidArgument(f"uris: not spotify:track:<id> URIs: {', '.join(bad)}")
    return list(dict.fromkeys(track_ids))


def parse_library_uris(text: str) -> list[tuple[str, uuid.UUID]]:
    """(type, id) pairs from a comma-separated `uris=` of tracks, albums, artists and playlists."""
    uris = split_uris([text])
    if not uris:
        raise InvalidArgument("uris: at least one URI is required")
    if len(uris) > MAX_LIBRARY_URIS:
        raise InvalidArgument(f"uris: at most {MAX_LIBRARY_URIS} per request, got {len(uris)}")
    parsed: list[tuple[str, uuid.UUID]] = []
    bad: list[str] = []
    for uri in uris:
        try:
            kind, item_id = ids.parse_uri(uri)
        except InvalidArgument:
            bad.append(uri)
            continue
        if kind not in LIBRARY_TYPES:
            bad.append(uri)
            continue
        parsed.append((kind, item_id))
    if bad:
        raise InvalidArgument(f"uris: not spotify:<{'|'.join(LIBRARY_TYPES)}>:<id> URIs: {', '.join(bad)}")
    return parsed


def check_room(current: int, adding: int) -> None:
    """At most MAX_PLAYLIST_ITEMS items per playlist."""
    if current + adding > MAX_PLAYLIST_ITEMS:
        raise FailedPrecondition(
            f"a playlist holds at most {MAX_PLAYLIST_ITEMS} items: it has {current}, "
            f"adding {adding} would make {current + adding}"
        )


def check_insert_position(position: int | None, total: int) -> int:
    """Where new items go: the given position (0..total), or the end."""
    if position is None:
        return total
    if not 0 <= position <= total:
        raise InvalidArgument(f"position must be between 0 and {total}, got {position}")
    return position
