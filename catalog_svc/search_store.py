"""SQL for search: full text over the stored search vectors, with a trigram fallback for typos.

How one type is searched (tracks shown; albums and artists follow the same shape):

1. Full text. The free text becomes ``to_tsquery('simple', immutable_unaccent('w1' & 'w2':*))``,
   the same folding as the generated ``search_vector`` columns, so "Anais" matches "Anaïs" and
   "midn" matches "Midnight". A track matches through its title, or through a credited artist
   or its album when the query names that artist or album (nearly) in full ("loud valleys"
   finds The Loud Valleys' tracks; "midnight" does not pull in every track of every
   "Midnight Sun Orchestra", which would swamp the title matches and cost a join per band).
   Each source is a GIN index lookup. With filters, the sources collect candidates and the
   filters run once over the merged set.
2. Only when full text finds nothing, trigrams: ``folded_text <% immutable_unaccent(lower(title))``
   (pg_trgm word similarity, served by the GIN trigram index), so "midnigth" still finds
   "Midnight". Falling back only on an empty result keeps `total` stable across pages.
3. Filters (artist:, album:, track:, year:, genre:) are conditions on the merged candidates.
4. Order: exact name match first, then text rank (a title hit outranks a credit hit), then
   popularity, then id (stable pages). "Exact" means the name has the query's words and no
   others (compared as stripped tsvectors, which is cheap for every candidate of a common word).

Queries with only filters skip 1 and 2 and list what the filters allow, most popular first, with
the count in its own statement (a window count over an index-ordered scan would read every row).
There is no separate index to refresh: the vectors are generated columns, so a committed write
is searchable at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog_svc.search_query import SearchQuery, tsquery_text

# Weights of the sources a free-text hit can come from (a title hit outranks a credit hit).
TITLE_WEIGHT, CREDIT_WEIGHT, ALBUM_WEIGHT = 1.0, 0.5, 0.25
RANK_NORMALIZATION = 1  # ts_rank: divide by 1 + log(document length), so shorter names rank higher


def _fold(column: str) -> str:
    """The folded form of a column, spelled exactly as the trigram indexes are built."""
    return f"catalog.immutable_unaccent(lower({column}))"


@dataclass
class _Sql:
    """Bound parameters of one statement, named p0, p1, ... as fragments are added."""

    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def tsquery(self, words: tuple[str, ...]) -> str:
        return f"to_tsquery('simple', catalog.immutable_unaccent({self.bind(tsquery_text(words))}))"

    def folded_text(self, value: str) -> str:
        return f"catalog.immutable_unaccent(CAST({self.bind(value)} AS text))"

    def text_array(self, values: Sequence[str]) -> str:
        return f"CAST({self.bind(list(values))} AS text[])"


@dataclass(frozen=True)
class _Free:
    """SQL fragments of the free text, bound once and shared by every source of a statement."""

    tsq: str  # the tsquery
    text: str  # the folded words, for trigrams
    vector: str  # the typed text as the stored vectors see it (positions stripped)
    lexemes: str  # how many lexemes that is

    @classmethod
    def of(cls, sql: _Sql, query: SearchQuery) -> _Free:
        vector = f"strip(to_tsvector('simple', {sql.folded_text(query.raw.lower())}))"
        return cls(
            tsq=sql.tsquery(query.words),
            text=sql.folded_text(query.text),
            vector=vector,
            lexemes=f"length({vector})",
        )

    def exact(self, vector: str) -> str:
        """Whether the name behind `vector` is the query: the same words (as a set), nothing more.

        Comparing stripped vectors costs a memcmp; normalising the name text (unaccent, regexp)
        for every candidate of a common word would dominate the query.
        """
        return f"(length({vector}) = {self.lexemes} AND strip({vector}) = {self.vector})"

    def rank(self, weight: float, vector: str) -> str:
        return f"{weight} * ts_rank({vector}, {self.tsq}, {RANK_NORMALIZATION})"

    def names_in_full(self, vector: str) -> str:
        """The query matches `vector` and names it in full; a query of two or more words may leave
        one word out, so "loud valleys" still names "The Loud Valleys" (a one-word query must be
        the whole name: "midnight" names "Midnight", not every "Midnight Echo")."""
        slack = f"CASE WHEN {self.lexemes} >= 2 THEN 1 ELSE 0 END"
        return f"({vector} @@ {self.tsq} AND length({vector}) <= {self.lexemes} + {slack})"


@dataclass(frozen=True)
class SearchHits:
    """One page of ids for one type, best first, and how many matched in all."""

    ids: list[uuid.UUID]
    total: int


def _year_bounds(sql: _Sql, column: str, first: int, last: int) -> str:
    start, end = sql.bind(first), sql.bind(last + 1)
    return f"({column} >= make_date({start}, 1, 1) AND {column} < make_date({end}, 1, 1))"


# ---- per-type filter conditions ------------------------------------------------------------
# Aliases: t = tracks, al = albums (a track's album, or the album searched), a = artists searched.


def _artists_named(sql: _Sql, words: tuple[str, ...]) -> str:
    return f"SELECT fa.id FROM catalog.artists fa WHERE fa.search_vector @@ {sql.tsquery(words)}"


def _artists_in_genre(sql: _Sql, spellings: tuple[str, ...]) -> str:
    return f"SELECT fg.id FROM catalog.artists fg WHERE fg.genres && {sql.text_array(spellings)}"


def _albums_of_artists(artists: str) -> str:
    """Albums crediting any of the artists selected by `artists` (main artist or album_artists)."""
    return (
        f"SELECT fal.id FROM catalog.albums fal WHERE fal.artist_id IN ({artists}) "
        f"UNION SELECT faa.album_id FROM catalog.album_artists faa WHERE faa.artist_id IN ({artists})"
    )


def _track_filters(sql: _Sql, query: SearchQuery) -> list[str]:
    conditions = []
    for words in query.artist:
        conditions.append(
            f"t.id IN (SELECT fta.track_id FROM catalog.track_artists fta "
            f"WHERE fta.artist_id IN ({_artists_named(sql, words)}))"
        )
    for words in query.album:
        conditions.append(f"al.search_vector @@ {sql.tsquery(words)}")
    for words in query.track:
        conditions.append(f"t.search_vector @@ {sql.tsquery(words)}")
    for years in query.years:
        conditions.append(_year_bounds(sql, "al.release_date", years.first, years.last))
    for spellings in query.genres:
        genres = sql.text_array(spellings)
        if query.words:
            # Checking each free-text candidate (an index probe or two) beats collecting every
            # track of a genre, which is most often thousands of artists' worth.
            credited = (
                f"EXISTS (SELECT 1 FROM catalog.track_artists fta JOIN catalog.artists fg "
                f"ON fg.id = fta.artist_id WHERE fta.track_id = t.id AND fg.genres && {genres} OFFSET 0)"
            )
        else:
            credited = (
                f"t.id IN (SELECT fta.track_id FROM catalog.track_artists fta "
                f"WHERE fta.artist_id IN ({_artists_in_genre(sql, spellings)}))"
            )
        conditions.append(f"(al.genres && {genres} OR {credited})")
    return conditions


def _album_filters(sql: _Sql, query: SearchQuery) -> list[str]:
    conditions = []
    for words in query.artist:
        conditions.append(f"al.id IN ({_albums_of_artists(_artists_named(sql, words))})")
    for words in query.album:
        conditions.append(f"al.search_vector @@ {sql.tsquery(words)}")
    for words in query.track:
        tsq = sql.tsquery(words)
        conditions.append(
            f"al.id IN (SELECT ft.album_id FROM catalog.tracks ft WHERE ft.search_vector @@ {tsq})"
        )
    for years in query.years:
        conditions.append(_year_bounds(sql, "al.release_date", years.first, years.last))
    for spellings in query.genres:
        conditions.append(
            f"(al.genres && {sql.text_array(spellings)} "
            f"OR al.id IN ({_albums_of_artists(_artists_in_genre(sql, spellings))}))"
        )
    return conditions


def _artist_filters(sql: _Sql, query: SearchQuery) -> list[str]:
    conditions = []
    for words in query.artist:
        conditions.append(f"a.search_vector @@ {sql.tsquery(words)}")
    for words in query.album:
        tsq = sql.tsquery(words)
        conditions.append(
            f"a.id IN (SELECT fal.artist_id FROM catalog.albums fal WHERE fal.search_vector @@ {tsq} "
            f"UNION SELECT faa.artist_id FROM catalog.album_artists faa JOIN catalog.albums fal "
            f"ON fal.id = faa.album_id WHERE fal.search_vector @@ {tsq})"
        )
    for words in query.track:
        conditions.append(
            f"a.id IN (SELECT fta.artist_id FROM catalog.track_artists fta JOIN catalog.tracks ft "
            f"ON ft.id = fta.track_id WHERE ft.search_vector @@ {sql.tsquery(words)})"
        )
    for years in query.years:
        conditions.append(
            f"a.id IN (SELECT fal.artist_id FROM catalog.albums fal "
            f"WHERE {_year_bounds(sql, 'fal.release_date', years.first, years.last)})"
        )
    for spellings in query.genres:
        conditions.append(f"a.genres && {sql.text_array(spellings)}")
    return conditions


# ---- candidate sources (free text) ---------------------------------------------------------
# Every source yields (id, exact, rank, popularity) rows of the searched entity.


@dataclass(frozen=True)
class _Kind:
    """How one search type maps onto tables."""

    key: str  # the id column of the searched entity
    popularity: str
    base: Callable[[str], str]  # FROM clause of the entity, given the filter conditions
    filters: Callable[[_Sql, SearchQuery], list[str]]
    sources: Callable[[_Free, bool], list[str]]


def _track_base(where: str) -> str:
    # The album is joined only when a filter looks at it.
    return (
        "(catalog.tracks t JOIN catalog.albums al ON al.id = t.album_id)"
        if "al." in where
        else "catalog.tracks t"
    )


# The tracks crediting artist m, as a loop over the (few) matching artists with an index probe
# each: with a plain join the planner hashes all of track_artists whenever it overestimates how
# many artists match. OFFSET 0 keeps the LATERAL subquery from being flattened into that join.
_CREDITED_TRACKS = (
    "CROSS JOIN LATERAL (SELECT mt.track_id FROM catalog.track_artists mt WHERE mt.artist_id = m.id "
    "OFFSET 0) mt JOIN catalog.tracks t ON t.id = mt.track_id"
)


def _track_sources(free: _Free, fuzzy: bool) -> list[str]:
    columns = "t.id, {exact} AS exact, {rank} AS rank, t.popularity"
    if fuzzy:
        q = free.text
        by_title = columns.format(exact="false", rank=f"word_similarity({q}, {_fold('t.title')})")
        by_artist = columns.format(
            exact="false", rank=f"{CREDIT_WEIGHT} * word_similarity({q}, {_fold('m.name')})"
        )
        return [
            f"SELECT {by_title} FROM catalog.tracks t WHERE {q} <% {_fold('t.title')}",
            f"SELECT {by_artist} FROM catalog.artists m {_CREDITED_TRACKS} WHERE {q} <% {_fold('m.name')}",
        ]
    by_title = columns.format(
        exact=free.exact("t.search_vector"), rank=free.rank(TITLE_WEIGHT, "t.search_vector")
    )
    by_artist = columns.format(exact="false", rank=free.rank(CREDIT_WEIGHT, "m.search_vector"))
    by_album = columns.format(exact="false", rank=free.rank(ALBUM_WEIGHT, "ma.search_vector"))
    return [
        f"SELECT {by_title} FROM catalog.tracks t WHERE t.search_vector @@ {free.tsq}",
        f"SELECT {by_artist} FROM catalog.artists m {_CREDITED_TRACKS} "
        f"WHERE {free.names_in_full('m.search_vector')}",
        f"SELECT {by_album} FROM catalog.albums ma JOIN catalog.tracks t ON t.album_id = ma.id "
        f"WHERE {free.names_in_full('ma.search_vector')}",
    ]


def _album_sources(free: _Free, fuzzy: bool) -> list[str]:
    columns = "al.id, {exact} AS exact, {rank} AS rank, al.popularity"
    # An album credits an artist as its main artist or through album_artists: one source each.
    credits = (
        "catalog.albums al ON al.artist_id = m.id",
        "catalog.album_artists ma ON ma.artist_id = m.id JOIN catalog.albums al ON al.id = ma.album_id",
    )
    if fuzzy:
        q = free.text
        by_title = columns.format(exact="false", rank=f"word_similarity({q}, {_fold('al.title')})")
        by_artist = columns.format(
            exact="false", rank=f"{CREDIT_WEIGHT} * word_similarity({q}, {_fold('m.name')})"
        )
        return [
            f"SELECT {by_title} FROM catalog.albums al WHERE {q} <% {_fold('al.title')}",
            *(
                f"SELECT {by_artist} FROM catalog.artists m JOIN {credit} WHERE {q} <% {_fold('m.name')}"
                for credit in credits
            ),
        ]
    by_title = columns.format(
        exact=free.exact("al.search_vector"), rank=free.rank(TITLE_WEIGHT, "al.search_vector")
    )
    by_artist = columns.format(exact="false", rank=free.rank(CREDIT_WEIGHT, "m.search_vector"))
    return [
        f"SELECT {by_title} FROM catalog.albums al WHERE al.search_vector @@ {free.tsq}",
        *(
            f"SELECT {by_artist} FROM catalog.artists m JOIN {credit} "
            f"WHERE {free.names_in_full('m.search_vector')}"
            for credit in credits
        ),
    ]


def _artist_sources(free: _Free, fuzzy: bool) -> list[str]:
    columns = "a.id, {exact} AS exact, {rank} AS rank, a.popularity"
    if fuzzy:
        by_name = columns.format(exact="false", rank=f"word_similarity({free.text}, {_fold('a.name')})")
        return [f"SELECT {by_name} FROM catalog.artists a WHERE {free.text} <% {_fold('a.name')}"]
    by_name = columns.format(
        exact=free.exact("a.search_vector"), rank=free.rank(TITLE_WEIGHT, "a.search_vector")
    )
    return [f"SELECT {by_name} FROM catalog.artists a WHERE a.search_vector @@ {free.tsq}"]


KINDS: dict[str, _Kind] = {
    "track": _Kind("t.id", "t.popularity", _track_base, _track_filters, _track_sources),
    "album": _Kind("al.id", "al.popularity", lambda _: "catalog.albums al", _album_filters, _album_sources),
    "artist": _Kind("a.id", "a.popularity", lambda _: "catalog.artists a", _artist_filters, _artist_sources),
}


@dataclass(frozen=True)
class Statement:
    """One search statement: its SQL and parameters, and whether `total` comes from a second one."""

    sql: str
    params: dict[str, Any]
    count_sql: str | None = None


def build_search(kind: str, query: SearchQuery, limit: int, offset: int, *, fuzzy: bool) -> Statement:
    """The statement(s) for one page of one type (exposed for EXPLAIN in tests and the benchmark)."""
    spec = KINDS[kind]
    sql = _Sql()
    where = " AND ".join(spec.filters(sql, query)) or "TRUE"
    if not query.words:
        base = spec.base(where)
        page = sql.bind(limit), sql.bind(offset)
        return Statement(
            sql=(
                f"SELECT {spec.key} AS id FROM {base} WHERE {where} "
                f"ORDER BY {spec.popularity} DESC, {spec.key} LIMIT {page[0]} OFFSET {page[1]}"
            ),
            params=sql.params,
            count_sql=f"SELECT count(*) FROM {base} WHERE {where}",
        )
    free = _Free.of(sql, query)
    # Without filters every source is final. With them, the sources only collect candidates and
    # the filters run once over the merged set: inside each source they would be planned (and
    # their subqueries hashed) once per source.
    filtered = where != "TRUE"
    sources = " UNION ALL ".join(spec.sources(free, fuzzy))
    limit_sql, offset_sql = sql.bind(limit), sql.bind(offset)
    merged = (
        f"WITH hits AS ({sources}), "
        f"best AS (SELECT id, bool_or(exact) AS exact, max(rank) AS rank, max(popularity) AS popularity "
        f"FROM hits GROUP BY id) "
    )
    if filtered:
        selected = f"SELECT best.* FROM best JOIN {spec.base(where)} ON {spec.key} = best.id WHERE {where}"
        merged += f", selected AS ({selected}) "
    source = "selected" if filtered else "best"
    return Statement(
        sql=(
            f"{merged}SELECT id, count(*) OVER () AS total FROM {source} "
            f"ORDER BY exact DESC, rank DESC, popularity DESC, id LIMIT {limit_sql} OFFSET {offset_sql}"
        ),
        params=sql.params,
    )


class SearchStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def search(self, kind: str, query: SearchQuery, limit: int, offset: int) -> SearchHits:
        """One page of `kind` ids matching `query`: full text first, trigrams if that finds nothing."""
        if query.is_empty:
            return SearchHits([], 0)
        async with self.sessions() as session, session.begin():
            # Plans depend on how selective the words are, so never reuse a generic plan (the
            # driver prepares statements it has run a few times); and the statements are short
            # top-N sorts, for which parallel workers and JIT compilation cost more than they save.
            await session.execute(
                text(
                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                    "set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)"
                )
            )
            hits = await self._page(session, kind, query, limit, offset, fuzzy=False)
            if hits.total == 0 and query.words:
                hits = await self._page(session, kind, query, limit, offset, fuzzy=True)
            return hits

    async def _page(
        self, session: AsyncSession, kind: str, query: SearchQuery, limit: int, offset: int, *, fuzzy: bool
    ) -> SearchHits:
        statement = build_search(kind, query, limit, offset, fuzzy=fuzzy)
        rows = (await session.execute(text(statement.sql), statement.params)).all()
        if statement.count_sql is not None:
            total = await session.scalar(text(statement.count_sql), statement.params)
            return SearchHits([row.id for row in rows], int(total or 0))
        if rows:
            return SearchHits([row.id for row in rows], int(rows[0].total))
        if offset == 0:
            return SearchHits([], 0)
        # Past the end: the page is empty, but `total` must still say how many there are.
        first = build_search(kind, query, 1, 0, fuzzy=fuzzy)
        row = (await session.execute(text(first.sql), first.params)).first()
        return SearchHits([], int(row.total) if row else 0)
