"""The id codec: UUIDs in the database, 22-character base62 strings outside.

A UUID's 128 bits fit in 22 base62 digits (62**22 > 2**128), which is the shape of
Spotify ids, so existing clients accept ours unchanged.
"""

from __future__ import annotations

import functools
import uuid

from meshkit.errors import InvalidArgument

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 22
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
URI_TYPES = frozenset({"track", "album", "artist", "playlist", "user", "show", "episode"})


@functools.lru_cache(maxsize=1 << 16)
def encode(value: uuid.UUID) -> str:
    """The 22-character base62 form of a UUID (left-padded with '0').

    Cached: every response encodes the same hot ids (a playlist page encodes 100 track ids
    twice), and the 22 big-integer divisions were ~15% of a page's CPU in library_svc.
    """
    n = value.int
    digits = []
    while n:
        n, rem = divmod(n, 62)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits)).rjust(ID_LENGTH, ALPHABET[0])


def decode(text: str, *, what: str = "id") -> uuid.UUID:
    """The UUID behind a base62 id; raises InvalidArgument for anything malformed."""
    if len(text) != ID_LENGTH:
        raise InvalidArgument(f"invalid {what} {text!r}: expected a 22-character base62 id")
    n = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise InvalidArgument(f"invalid {what} {text!r}: {ch!r} is not a base62 character")
        n = n * 62 + digit
    if n >= 1 << 128:
        raise InvalidArgument(f"invalid {what} {text!r}: out of range")
    return uuid.UUID(int=n)


def new_id() -> uuid.UUID:
    """A fresh random id (UUID4), the kind every table's primary key holds."""
    return uuid.uuid4()


def uri(kind: str, value: uuid.UUID) -> str:
    """`spotify:<kind>:<id>`, the URI form Spotify clients pass around."""
    return f"spotify:{kind}:{encode(value)}"


def parse_uri(text: str, *, expected: str | None = None) -> tuple[str, uuid.UUID]:
    """Split `spotify:<kind>:<id>` into its kind and UUID, checking the kind when one is expected."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "spotify" or parts[1] not in URI_TYPES:
        raise InvalidArgument(f"invalid uri {text!r}: expected spotify:<type>:<id>")
    kind = parts[1]
    if expected is not None and kind != expected:
        raise InvalidArgument(f"invalid uri {text!r}: expected a {expected} uri")
    return kind, decode(parts[2], what=f"{kind} id")


def parse_id_or_uri(text: str, kind: str) -> uuid.UUID:
    """Accept a bare id or a `spotify:<kind>:<id>` URI, as Spotify does where it takes ids."""
    if text.startswith("spotify:"):
        return parse_uri(text, expected=kind)[1]
    return decode(text, what=f"{kind} id")


def parse_id_list(text: str, kind: str, *, limit: int) -> list[uuid.UUID]:
    """A comma-separated `ids=` parameter, at most `limit` entries, as Spotify's multi-get takes."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise InvalidArgument("ids: at least one id is required")
    if len(items) > limit:
        raise InvalidArgument(f"ids: at most {limit} ids per request, got {len(items)}")
    return [parse_id_or_uri(item, kind) for item in items]
