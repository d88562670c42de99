"""Parsing of Spotify's search syntax: free text plus `field:value` filters, and the `type` list.

    q = 'midnight artist:"the loud" year:2015-2019 genre:rock'

Free text and the text filters (artist:, album:, track:) become word lists that the store
turns into PostgreSQL tsqueries (every word must match, the last one as a prefix, so that
typing "midn" already finds "Midnight"). `year:` takes a year or an inclusive range, `genre:`
a genre name. Quoting groups words with spaces (`artist:"the loud valleys"`). Anything that
looks like `word:` but is not a known field stays free text ("Re: Stacks" is a title).
Everything here is pure: no I/O, so the rules are unit-tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meshkit.errors import InvalidArgument

SEARCH_TYPES = ("album", "artist", "track")
TEXT_FIELDS = ("artist", "album", "track")
FIELDS = (*TEXT_FIELDS, "year", "genre")
MAX_QUERY_LENGTH = 500
MAX_WORDS = 16
MIN_YEAR, MAX_YEAR = 1, 9999

# A token: field:"quoted value" | field:value | "quoted free text" | bare word.
_TOKEN = re.compile(
    r'(?P<field>[A-Za-z]+):"(?P<fquoted>[^"]*)"?'
    r"|(?P<field2>[A-Za-z]+):(?P<fvalue>\S+)"
    r'|"(?P<quoted>[^"]*)"?'
    r"|(?P<word>\S+)"
)
# Words as the 'simple' text search parser sees them, minus the underscore it treats as a separator.
_WORD = re.compile(r"[^\W_]+")
_YEAR_RANGE = re.compile(r"^(\d{1,4})(?:-(\d{1,4}))?$")


def words_of(text: str) -> tuple[str, ...]:
    """The searchable words of `text`, lower-cased (accents are folded in SQL, like the index)."""
    return tuple(word.lower() for word in _WORD.findall(text))


@dataclass(frozen=True)
class YearRange:
    """An inclusive range of release years."""

    first: int
    last: int


@dataclass(frozen=True)
class SearchQuery:
    """A parsed `q`: free-text words and the filters every result must satisfy."""

    words: tuple[str, ...] = ()
    raw: str = ""  # the free text as typed (filters removed), for lexeme counting in SQL
    artist: tuple[tuple[str, ...], ...] = ()
    album: tuple[tuple[str, ...], ...] = ()
    track: tuple[tuple[str, ...], ...] = ()
    years: tuple[YearRange, ...] = ()
    genres: tuple[tuple[str, ...], ...] = field(default=())  # each entry: spellings of one genre

    @property
    def text(self) -> str:
        """The free text as one normalised string (compared with names for exact-match ranking)."""
        return " ".join(self.words)

    @property
    def has_filters(self) -> bool:
        return bool(self.artist or self.album or self.track or self.years or self.genres)

    @property
    def is_empty(self) -> bool:
        """Nothing to search for (e.g. q was only punctuation): every type answers an empty page."""
        return not self.words and not self.has_filters


def tsquery_text(words: tuple[str, ...]) -> str:
    """A to_tsquery() argument: every word required, the last one also as a prefix.

    Words come from `words_of`, so they hold only letters and digits; quoting them keeps
    tsquery operators out regardless.
    """
    if not words:
        raise ValueError("tsquery_text needs at least one word")
    quoted = [f"'{word}'" for word in words]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def parse_query(q: str) -> SearchQuery:
    """Parse Spotify's `q`; INVALID_ARGUMENT for an empty query or a malformed filter."""
    if not q or not q.strip():
        raise InvalidArgument("q: a search query is required")
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidArgument(f"q: at most {MAX_QUERY_LENGTH} characters, got {len(q)}")
    free: list[str] = []
    text_filters: dict[str, list[tuple[str, ...]]] = {name: [] for name in TEXT_FIELDS}
    years: list[YearRange] = []
    genres: list[tuple[str, ...]] = []
    for match in _TOKEN.finditer(q):
        name = (match.group("field") or match.group("field2") or "").lower()
        value = match.group("fquoted") if match.group("field") else match.group("fvalue")
        if name and name not in FIELDS:
            free.append(match.group(0))  # "re:stacks" is a word, not a filter
            continue
        if not name:
            free.append(match.group("quoted") or match.group("word") or "")
            continue
        if name == "year":
            years.append(_year_range(value or ""))
        elif name == "genre":
            genres.append(_genre_spellings(value or ""))
        else:
            words = words_of(value or "")
            if not words:
                raise InvalidArgument(f'q: {name}: needs a value, e.g. {name}:"..."')
            text_filters[name].append(words[:MAX_WORDS])
    return SearchQuery(
        words=words_of(" ".join(free))[:MAX_WORDS],
        raw=" ".join(" ".join(free).split()),
        artist=tuple(text_filters["artist"]),
        album=tuple(text_filters["album"]),
        track=tuple(text_filters["track"]),
        years=tuple(years),
        genres=tuple(genres),
    )


def _year_range(value: str) -> YearRange:
    match = _YEAR_RANGE.match(value.strip())
    if not match:
        raise InvalidArgument(f"q: year: expects a year or a range like 1990-1999, got {value!r}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if not (MIN_YEAR <= first <= MAX_YEAR and MIN_YEAR <= last <= MAX_YEAR):
        raise InvalidArgument(f"q: year: {value!r} is out of range")
    if last < first:
        raise InvalidArgument(f"q: year: range {value!r} ends before it starts")
    return YearRange(first, last)


def _genre_spellings(value: str) -> tuple[str, ...]:
    """A genre as stored (lower case) in its hyphen and space spellings ("hip hop" = "hip-hop")."""
    genre = " ".join(value.lower().split())
    if not genre:
        raise InvalidArgument('q: genre: needs a value, e.g. genre:"hip-hop"')
    return tuple(dict.fromkeys((genre, genre.replace(" ", "-"), genre.replace("-", " "))))


def parse_types(raw: str) -> tuple[str, ...]:
    """The `type` list, in a fixed order; INVALID_ARGUMENT when missing or unsupported."""
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not names:
        raise InvalidArgument(f"type: required, a comma-separated list of {', '.join(SEARCH_TYPES)}")
    unknown = sorted({name for name in names if name not in SEARCH_TYPES})
    if unknown:
        raise InvalidArgument(
            f"type: unsupported {', '.join(unknown)}; supported types are {', '.join(SEARCH_TYPES)}"
        )
    return tuple(name for name in SEARCH_TYPES if name in names)
