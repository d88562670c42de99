"""The catalog's request rules: raw request values in, checked and normalised values out.

Every rule lives here, free of I/O, so a bad request is refused (INVALID_ARGUMENT, with the
field and the reason) before anything is read or written: the read parameters that are not
paging (market, include_groups) and every field of a write. What needs the database (does the
album exist? is the track number free?) is checked by the writes module inside the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from catalog_svc.models import ALBUM_GROUPS, ALBUM_TYPES, RELEASE_DATE_PRECISIONS
from meshkit import ids
from meshkit.errors import InvalidArgument
from meshkit.idempotency import check_key
from meshkit.text import has_control_characters

# An album object embeds the first page of its tracks, as Spotify's does.
ALBUM_TRACKS_LIMIT = 50

MAX_NAME = 200
MAX_GENRES = 10
MAX_GENRE = 50
MAX_IMAGES = 10
MAX_URL = 2048
MAX_IMAGE_SIDE = 10_000
MAX_LABEL = 200
MAX_COPYRIGHTS = 10
MAX_COPYRIGHT_TEXT = 500
COPYRIGHT_TYPES = ("C", "P")
MAX_ARTISTS = 20
MAX_MARKETS = 250
MAX_TRACK_NUMBER = 1000
MAX_DISC_NUMBER = 100
MAX_REQUEST_ID = 200

_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
_UPC = re.compile(r"^\d{12,13}$")
_MARKET = re.compile(r"^[A-Z]{2}$")
_DATE_FORMATS = {
    "year": re.compile(r"^(\d{4})$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "day": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
}


@dataclass(frozen=True)
class Image:
    url: str
    height: int
    width: int


@dataclass(frozen=True)
class Copyright:
    text: str
    type: str


@dataclass(frozen=True)
class ReleaseDate:
    """A release date as stored: the first day of its period, and how much of it is known."""

    value: dt.date
    precision: str


@dataclass(frozen=True)
class ArtistDraft:
    name: str
    genres: tuple[str, ...]
    images: tuple[Image, ...]


@dataclass(frozen=True)
class ArtistChanges:
    """The artist an update changes and the fields it sets; None leaves a field as it is."""

    id: uuid.UUID
    name: str | None = None
    genres: tuple[str, ...] | None = None
    images: tuple[Image, ...] | None = None


@dataclass(frozen=True)
class AlbumDraft:
    name: str
    album_type: str
    artist_ids: tuple[uuid.UUID, ...]
    release_date: ReleaseDate | None
    genres: tuple[str, ...]
    label: str | None
    images: tuple[Image, ...]
    copyrights: tuple[Copyright, ...]
    upc: str | None
    markets: tuple[str, ...]


@dataclass(frozen=True)
class AlbumChanges:
    id: uuid.UUID
    name: str | None = None
    album_type: str | None = None
    artist_ids: tuple[uuid.UUID, ...] | None = None
    release_date: ReleaseDate | None = None
    clear_release_date: bool = False
    label: str | None = None
    clear_label: bool = False
    genres: tuple[str, ...] | None = None
    images: tuple[Image, ...] | None = None
    copyrights: tuple[Copyright, ...] | None = None
    markets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrackDraft:
    album_id: uuid.UUID
    name: str
    artist_ids: tuple[uuid.UUID, ...]  # empty: the album's artists
    track_number: int
    disc_number: int
    explicit: bool
    isrc: str | None


@dataclass(frozen=True)
class TrackChanges:
    id: uuid.UUID
    name: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    explicit: bool | None = None
    isrc: str | None = None
    clear_isrc: bool = False
    artist_ids: tuple[uuid.UUID, ...] | None = None


# ---- read parameters --------------------------------------------------------------------------


def market(value: str) -> str:
    """The `market` parameter: '' (none given) or an ISO 3166-1 alpha-2 code, upper-cased.

    "from_token" (Spotify: the user's country) is treated as no market: the catalog does not
    know the caller's country.
    """
    if not value or value == "from_token":
        return ""
    code = value.strip().upper()
    if not _MARKET.match(code):
        raise InvalidArgument(f"market: an ISO 3166-1 alpha-2 country code, got {value!r}")
    return code


def include_groups(value: str) -> tuple[str, ...]:
    """Spotify's `include_groups` (comma list of album, single, appears_on, compilation); all when empty."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not names:
        return ALBUM_GROUPS
    unknown = sorted({name for name in names if name not in ALBUM_GROUPS})
    if unknown:
        raise InvalidArgument(
            f"include_groups: unknown {', '.join(unknown)}; valid groups are {', '.join(ALBUM_GROUPS)}"
        )
    return tuple(group for group in ALBUM_GROUPS if group in names)


# ---- write fields -----------------------------------------------------------------------------


def name(value: str, field: str = "name") -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidArgument(f"{field}: required, 1 to {MAX_NAME} characters")
    if len(cleaned) > MAX_NAME:
        raise InvalidArgument(f"{field}: at most {MAX_NAME} characters, got {len(cleaned)}")
    if has_control_characters(cleaned):
        raise InvalidArgument(f"{field}: control characters are not allowed")
    return cleaned


def genres(values: Iterable[str]) -> tuple[str, ...]:
    """Lower-case genre names, de-duplicated in order."""
    result = tuple(dict.fromkeys(_genre(raw) for raw in values))
    if len(result) > MAX_GENRES:
        raise InvalidArgument(f"genres: at most {MAX_GENRES}, got {len(result)}")
    return result


def _genre(raw: str) -> str:
    genre = " ".join(raw.lower().split())
    if not genre or len(genre) > MAX_GENRE or has_control_characters(genre):
        raise InvalidArgument(f"genres: each genre is 1 to {MAX_GENRE} printable characters, got {raw!r}")
    return genre


def images(values: Sequence[tuple[str, int, int]]) -> tuple[Image, ...]:
    if len(values) > MAX_IMAGES:
        raise InvalidArgument(f"images: at most {MAX_IMAGES}, got {len(values)}")
    result = []
    for url, height, width in values:
        if not url.startswith(("https://", "http://")) or len(url) > MAX_URL or has_control_characters(url):
            raise InvalidArgument(f"images: url must be an http(s) URL of at most {MAX_URL} characters")
        if not (0 <= height <= MAX_IMAGE_SIDE and 0 <= width <= MAX_IMAGE_SIDE):
            raise InvalidArgument(f"images: height and width must be between 0 and {MAX_IMAGE_SIDE}")
        result.append(Image(url, height, width))
    return tuple(result)


def copyrights(values: Sequence[tuple[str, str]]) -> tuple[Copyright, ...]:
    if len(values) > MAX_COPYRIGHTS:
        raise InvalidArgument(f"copyrights: at most {MAX_COPYRIGHTS}, got {len(values)}")
    result = []
    for text, kind in values:
        cleaned = " ".join(text.split())
        if not cleaned or len(cleaned) > MAX_COPYRIGHT_TEXT:
            raise InvalidArgument(f"copyrights: text is 1 to {MAX_COPYRIGHT_TEXT} characters")
        if kind.upper() not in COPYRIGHT_TYPES:
            raise InvalidArgument(f"copyrights: type must be C or P, got {kind!r}")
        result.append(Copyright(cleaned, kind.upper()))
    return tuple(result)


def markets(values: Iterable[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(_market_code(raw) for raw in values))
    if len(result) > MAX_MARKETS:
        raise InvalidArgument(f"available_markets: at most {MAX_MARKETS}")
    return result


def _market_code(raw: str) -> str:
    code = raw.strip().upper()
    if not _MARKET.match(code):
        raise InvalidArgument(f"available_markets: ISO 3166-1 alpha-2 codes, got {raw!r}")
    return code


def label(value: str) -> str | None:
    cleaned = " ".join(value.split())
    if len(cleaned) > MAX_LABEL:
        raise InvalidArgument(f"label: at most {MAX_LABEL} characters")
    return cleaned or None


def upc(value: str) -> str | None:
    cleaned = value.strip()
    if cleaned and not _UPC.match(cleaned):
        raise InvalidArgument(f"upc: 12 or 13 digits, got {value!r}")
    return cleaned or None


def isrc(value: str) -> str | None:
    cleaned = value.strip().upper().replace("-", "")
    if cleaned and not _ISRC.match(cleaned):
        raise InvalidArgument(f"isrc: 12 characters like USRC17607839, got {value!r}")
    return cleaned or None


def album_type(value: str) -> str:
    kind = value.strip().lower() or "album"
    if kind not in ALBUM_TYPES:
        raise InvalidArgument(f"album_type: one of {', '.join(ALBUM_TYPES)}, got {value!r}")
    return kind


def release_date(value: str, precision: str = "") -> ReleaseDate:
    """ "YYYY", "YYYY-MM" or "YYYY-MM-DD"; the precision follows the format and must agree if given."""
    text = value.strip()
    derived = next((p for p, pattern in _DATE_FORMATS.items() if pattern.match(text)), None)
    if derived is None:
        raise InvalidArgument(f"release_date: YYYY, YYYY-MM or YYYY-MM-DD, got {value!r}")
    if precision and precision not in RELEASE_DATE_PRECISIONS:
        raise InvalidArgument(
            f"release_date_precision: one of {', '.join(RELEASE_DATE_PRECISIONS)}, got {precision!r}"
        )
    if precision and precision != derived:
        raise InvalidArgument(f"release_date_precision {precision!r} does not match release_date {value!r}")
    parts = [int(p) for p in text.split("-")] + [1, 1]
    try:
        day = dt.date(parts[0], parts[1], parts[2])
    except ValueError:
        raise InvalidArgument(f"release_date: {value!r} is not a calendar date") from None
    if day.year < 1000:
        raise InvalidArgument(f"release_date: year {day.year} is out of range")
    return ReleaseDate(day, derived)


def artist_list(values: Sequence[str], field: str = "artist_ids", *, required: bool) -> tuple[uuid.UUID, ...]:
    if required and not values:
        raise InvalidArgument(f"{field}: at least one artist id is required")
    if len(values) > MAX_ARTISTS:
        raise InvalidArgument(f"{field}: at most {MAX_ARTISTS} artists, got {len(values)}")
    parsed = tuple(ids.parse_id_or_uri(v.strip(), "artist") for v in values)
    if len(set(parsed)) != len(parsed):
        raise InvalidArgument(f"{field}: an artist is listed twice")
    return parsed


def track_number(value: int, field: str = "track_number") -> int:
    if not 1 <= value <= MAX_TRACK_NUMBER:
        raise InvalidArgument(f"{field}: between 1 and {MAX_TRACK_NUMBER}, got {value}")
    return value


def disc_number(value: int) -> int:
    if not 1 <= value <= MAX_DISC_NUMBER:
        raise InvalidArgument(f"disc_number: between 1 and {MAX_DISC_NUMBER}, got {value}")
    return value


def request_id(value: str) -> str:
    """The write's retry key, as write_requests can store it (no NUL, at most 200 characters)."""
    check_key(value, "request_id", MAX_REQUEST_ID)
    return value


def no_managers(manager_user_ids: Sequence[str]) -> None:
    """Who manages an artist is auth_svc's data; catalog cannot grant it."""
    if manager_user_ids:
        raise InvalidArgument(
            "manager_user_ids: artist managers are granted in auth_svc "
            "(AdminService.SetUserRoles with artist_ids), not through the catalog"
        )


def fields_to_change(mask: Sequence[str], present: Iterable[str], allowed: Iterable[str]) -> set[str]:
    """The fields an update touches: the mask's paths, or (empty mask) the fields the request sets."""
    allowed = set(allowed)
    if mask:
        unknown = sorted(set(mask) - allowed)
        if unknown:
            raise InvalidArgument(f"update_mask: unknown field {', '.join(unknown)}")
        return set(mask)
    changed = set(present) & allowed
    if not changed:
        raise InvalidArgument("nothing to update: set at least one field (or name it in update_mask)")
    return changed
