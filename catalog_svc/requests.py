"""Catalog write requests into domain values: drafts, changes, and a write's retry identity.

The servicer layer's other half beside objects.py (domain values into protobuf answers): a write
names the fields it sets, and only those become changes, so an absent field is never cleared.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message
from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from catalog_svc import rules
from catalog_svc.writes import WriteRequest
from meshkit import ids
from meshkit.context import current_idempotency_key
from meshkit.errors import InvalidArgument

ARTIST_FIELDS = ("name", "genres", "images", "manager_user_ids")
ALBUM_FIELDS = (
    "name",
    "album_type",
    "release_date",
    "release_date_precision",
    "label",
    "genres",
    "images",
    "artist_ids",
    "copyrights",
    "available_markets",
)
TRACK_FIELDS = ("name", "track_number", "disc_number", "explicit", "isrc", "artist_ids")


def write_request(rpc: str, request: Message) -> WriteRequest:
    """The retry identity of a write: its request_id (or Idempotency-Key header) and its content."""
    key = current_idempotency_key(getattr(request, "request_id", ""))
    return WriteRequest(rpc=rpc, request_id=key, content=request.SerializeToString(deterministic=True))


def present(request: Message, names: Sequence[str]) -> set[str]:
    """The fields a request sets: optional scalars that are present, repeated fields that are non-empty."""
    present = set()
    for name in names:
        field = request.DESCRIPTOR.fields_by_name[name]
        if field.is_repeated:
            if len(getattr(request, name)):
                present.add(name)
        elif field.has_presence and request.HasField(name):
            present.add(name)
    return present


def changed_fields(
    request: catalog_pb2.UpdateArtistRequest
    | catalog_pb2.UpdateAlbumRequest
    | catalog_pb2.UpdateTrackRequest,
    allowed: Sequence[str],
) -> set[str]:
    """The fields an update touches (its update_mask, or else the fields it sets)."""
    return rules.fields_to_change(request.update_mask.paths, present(request, allowed), allowed)


def images(images: Sequence[common_pb2.Image]) -> tuple[rules.Image, ...]:
    return rules.images([(i.url, i.height, i.width) for i in images])


def artist_draft(request: catalog_pb2.CreateArtistRequest) -> rules.ArtistDraft:
    rules.no_managers(request.manager_user_ids)
    return rules.ArtistDraft(
        name=rules.name(request.name), genres=rules.genres(request.genres), images=images(request.images)
    )


def artist_changes(request: catalog_pb2.UpdateArtistRequest) -> rules.ArtistChanges:
    artist_id = ids.parse_id_or_uri(request.id, "artist")
    changed = changed_fields(request, ARTIST_FIELDS)
    if "manager_user_ids" in changed:
        rules.no_managers(request.manager_user_ids or ["-"])
    return rules.ArtistChanges(
        id=artist_id,
        name=rules.name(request.name) if "name" in changed else None,
        genres=rules.genres(request.genres) if "genres" in changed else None,
        images=images(request.images) if "images" in changed else None,
    )


def album_draft(request: catalog_pb2.CreateAlbumRequest) -> rules.AlbumDraft:
    if request.release_date_precision and not request.release_date:
        raise InvalidArgument("release_date_precision: given without a release_date")
    return rules.AlbumDraft(
        name=rules.name(request.name),
        album_type=rules.album_type(request.album_type),
        artist_ids=rules.artist_list(request.artist_ids, required=True),
        release_date=(
            rules.release_date(request.release_date, request.release_date_precision)
            if request.release_date
            else None
        ),
        genres=rules.genres(request.genres),
        label=rules.label(request.label),
        images=images(request.images),
        copyrights=rules.copyrights([(c.text, c.type) for c in request.copyrights]),
        upc=rules.upc(request.upc),
        markets=rules.markets(request.available_markets),
    )


def album_changes(request: catalog_pb2.UpdateAlbumRequest) -> rules.AlbumChanges:
    album_id = ids.parse_id_or_uri(request.id, "album")
    changed = changed_fields(request, ALBUM_FIELDS)
    if "release_date_precision" in changed and "release_date" not in changed:
        raise InvalidArgument("release_date_precision: change it together with release_date")
    release, clear_release = None, False
    if "release_date" in changed:
        if request.release_date:
            precision = request.release_date_precision if "release_date_precision" in changed else ""
            release = rules.release_date(request.release_date, precision)
        else:
            clear_release = True
    label = rules.label(request.label) if "label" in changed else None
    return rules.AlbumChanges(
        id=album_id,
        name=rules.name(request.name) if "name" in changed else None,
        album_type=rules.album_type(request.album_type) if "album_type" in changed else None,
        artist_ids=rules.artist_list(request.artist_ids, required=True) if "artist_ids" in changed else None,
        release_date=release,
        clear_release_date=clear_release,
        label=label,
        clear_label="label" in changed and label is None,
        genres=rules.genres(request.genres) if "genres" in changed else None,
        images=images(request.images) if "images" in changed else None,
        copyrights=(
            rules.copyrights([(c.text, c.type) for c in request.copyrights])
            if "copyrights" in changed
            else None
        ),
        markets=rules.markets(request.available_markets) if "available_markets" in changed else None,
    )


def track_draft(request: catalog_pb2.CreateTrackRequest) -> rules.TrackDraft:
    if not request.album_id:
        raise InvalidArgument("album_id: required")
    return rules.TrackDraft(
        album_id=ids.parse_id_or_uri(request.album_id, "album"),
        name=rules.name(request.name),
        artist_ids=rules.artist_list(request.artist_ids, required=False),
        track_number=rules.track_number(request.track_number),
        disc_number=rules.disc_number(request.disc_number or 1),
        explicit=request.explicit,
        isrc=rules.isrc(request.isrc),
    )


def track_changes(request: catalog_pb2.UpdateTrackRequest) -> rules.TrackChanges:
    track_id = ids.parse_id_or_uri(request.id, "track")
    changed = changed_fields(request, TRACK_FIELDS)
    isrc = rules.isrc(request.isrc) if "isrc" in changed else None
    return rules.TrackChanges(
        id=track_id,
        name=rules.name(request.name) if "name" in changed else None,
        track_number=rules.track_number(request.track_number) if "track_number" in changed else None,
        disc_number=rules.disc_number(request.disc_number) if "disc_number" in changed else None,
        explicit=request.explicit if "explicit" in changed else None,
        isrc=isrc,
        clear_isrc="isrc" in changed and isrc is None,
        artist_ids=rules.artist_list(request.artist_ids, required=True) if "artist_ids" in changed else None,
    )
