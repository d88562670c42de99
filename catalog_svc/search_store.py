"""SQL for search: full text over the stored search vectors, with a trigram fallback for typos.

How one type is searched (tracks shown; albums and artists follow the same shape):

1. Full text. The free text becomes ``to_tsquery('simple', immutable_unaccent('w1' & 'w2':*))``,
   the same folding as the generated ``search_vector`` columns, so "Anais" matches "Anaïs" and
   "midn" matches "Midnight". A track matches through its title, or through a credited artist
   or its album when the query names that artist or album (nearly) in full ("loud valleys"
   finds The Loud Valleys' tracks; "midnight" does not pull in every track of every
   "Midnight Sun Orchestra"). Filters (artist:, album:, track:, year:, genre:) are conditions
   inside every source.
2. Order: exact name first, then the best kind of hit (title, then credited artist, then
   album), then popularity, then id (stable pages). "Exact" means the name has the query's
   words and no others: its stripped vector equals the query's, looked up in an index.
3. Only when full text finds nothing: each word the catalog does not have is replaced by the
   closest word of ``catalog.search_words`` (every folded word of every name, kept by
   triggers; pg_trgm similarity), and full text runs again, so "midnigth" finds "Midnight".
4. If that finds nothing either, trigrams on every name:
   ``folded_text <% immutable_unaccent(lower(title))`` (word similarity, GIN trigram index),
   ranked by similarity. Falling back only on an empty result keeps `total` stable across pages.

Why that order: it needs no score computed over every match. The top N of the merged list lies
within each source's top N by popularity plus the top N exact names, so a word found in 15,000
of a million titles costs a walk down the popularity index until N of them turned up (a few
hundred rows), not a rank for all 15,000. (ts_rank's only extra signal on one-line names was
"shorter first", which popularity answers better.) `total` is exact up to TOTAL_CAP and reads
TOTAL_CAP beyond it, so counting stops early too; and since an index answers with every match at
once, tracks without filters count their title matches among the POPULAR band first (an index
of its own), so a common word is counted from a tenth of its matches.

Queries with only filters skip the free text and list what the filters allow, most popular
first. Nothing is refreshed later: the vectors are generated columns, and the tracks' filter
copies and the vocabulary are kept by triggers in the writing transaction, so a committed write
is searchable at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from catalog_svc.search_query import SearchQuery, tsquery_text
from meshkit.db import SqlStore

# Which kind of hit ranks first: the entity's own name, then a credited artist, then its album.
TITLE, CREDIT, ALBUM = 3, 2, 1
# Trigram matches through a credited artist count half (their similarity is to another name).
CREDIT_WEIGHT = 0.5
# `total` is exact up to here and reads this beyond: the furthest a client can page is offset
# 1,000 plus a page of 50, and counting every match of a common word would visit every one.
TOTAL_CAP = 1050
# Tracks at least this popular (about a tenth of a skewed catalog) have their own full-text index
# (migration 0007, whose predicate must match): a common word passes TOTAL_CAP among them alone,
# so its count never builds the bitmap of every track that has it.
POPULAR = 70


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
    vector: str  # the typed text as the stored vectors see it, stripped: equal to a name's = exact
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
    """Track conditions test the track's own copies of its credits, genres and release date
    (`filter_*`, kept by triggers), so each filter is an index the planner intersects with the
    title's instead of a join per candidate."""
    conditions = []
    for words in query.artist:
        tsq = sql.tsquery(words)
        # The copy holds every credited name at once; the probe keeps "all words, one artist".
        conditions.append(
            f"t.filter_artists @@ {tsq} AND EXISTS (SELECT 1 FROM catalog.track_artists fta "
            f"JOIN catalog.artists fa ON fa.id = fta.artist_id "
            f"WHERE fta.track_id = t.id AND fa.search_vector @@ {tsq} OFFSET 0)"
        )
    for words in query.album:
        conditions.append(f"al.search_vector @@ {sql.tsquery(words)}")
    for words in query.track:
        conditions.append(f"t.search_vector @@ {sql.tsquery(words)}")
    for years in query.years:
        conditions.append(_year_bounds(sql, "t.filter_release_date", years.first, years.last))
    for spellings in query.genres:
        conditions.append(f"t.filter_genres && {sql.text_array(spellings)}")
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


# ---- sources (free text) -------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One way an entity matches the free text: the FROM clause that reaches it and the condition."""

    tier: int  # TITLE, CREDIT or ALBUM: which kind of hit ranks first
    tables: str
    condition: str


@dataclass(frozen=True)
class _Kind:
    """How one search type maps onto tables."""

    table: str  # the entity's table and alias: "catalog.tracks t"
    name: str  # its name column, compared by trigrams
    filters: Callable[[_Sql, SearchQuery], list[str]]
    sources: Callable[[_Free], list[_Source]]  # the first one is the entity's own name
    credits: tuple[str, ...] = ()  # FROM clauses reaching the entity from a credited artist `m`
    filters_read_album: bool = False  # tracks: conditions on `al` need the track's album
    popular_first: bool = False  # tracks: read title matches among the POPULAR band first

    @property
    def alias(self) -> str:
        return self.table.split()[-1]

    @property
    def key(self) -> str:
        return f"{self.alias}.id"

    @property
    def popularity(self) -> str:
        return f"{self.alias}.popularity"

    @property
    def vector(self) -> str:
        """The entity's own search vector (the exact-name index is on strip() of it)."""
        return f"{self.alias}.search_vector"

    def base(self, where: str) -> str:
        """FROM clause of the entity alone; the album is joined only when a filter looks at it."""
        if self.filters_read_album and "al." in where:
            return f"({self.table} JOIN catalog.albums al ON al.id = t.album_id)"
        return self.table

    def joins_for(self, where: str) -> str:
        """Tables the filters need beyond a source's own (a track's album, when a filter reads it)."""
        if not self.filters_read_album or "al." not in where:
            return ""
        # One index probe per candidate (OFFSET 0 keeps it a loop): a filter's selectivity is
        # unknown to the planner, which otherwise hashes all 100,000 albums for a dozen tracks.
        return " CROSS JOIN LATERAL (SELECT * FROM catalog.albums al WHERE al.id = t.album_id OFFSET 0) al"

    def similar(self, free: _Free) -> list[str]:
        """Trigram sources: the entity's own name, and each credited artist's (CREDIT_WEIGHT)."""
        q, rows = free.text, f"{self.key}, {{rank}} AS rank, {self.popularity}"
        own = _fold(f"{self.alias}.{self.name}")
        by_name = rows.format(rank=f"word_similarity({q}, {own})")
        by_artist = rows.format(rank=f"{CREDIT_WEIGHT} * word_similarity({q}, {_fold('m.name')})")
        return [
            f"SELECT {by_name} FROM {self.table} WHERE {q} <% {own}",
            *(f"SELECT {by_artist} FROM {credit} WHERE {q} <% {_fold('m.name')}" for credit in self.credits),
        ]


# The tracks crediting artist m, as a loop over the (few) matching artists with an index probe
# each: with a plain join the planner hashes all of track_artists whenever it overestimates how
# many artists match. OFFSET 0 keeps the LATERAL subquery from being flattened into that join.
_CREDITED_TRACKS = (
    "CROSS JOIN LATERAL (SELECT mt.track_id FROM catalog.track_artists mt WHERE mt.artist_id = m.id "
    "OFFSET 0) mt JOIN catalog.tracks t ON t.id = mt.track_id"
)


def _track_sources(free: _Free) -> list[_Source]:
    return [
        _Source(TITLE, "catalog.tracks t", f"t.search_vector @@ {free.tsq}"),
        _Source(CREDIT, f"catalog.artists m {_CREDITED_TRACKS}", free.names_in_full("m.search_vector")),
        _Source(
            ALBUM,
            "catalog.albums ma JOIN catalog.tracks t ON t.album_id = ma.id",
            free.names_in_full("ma.search_vector"),
        ),
    ]


# An album credits an artist as its main artist or through album_artists: one source each.
_ALBUM_CREDITS = (
    "catalog.artists m JOIN catalog.albums al ON al.artist_id = m.id",
    "catalog.artists m JOIN catalog.album_artists ma ON ma.artist_id = m.id "
    "JOIN catalog.albums al ON al.id = ma.album_id",
)


def _album_sources(free: _Free) -> list[_Source]:
    return [
        _Source(TITLE, "catalog.albums al", f"al.search_vector @@ {free.tsq}"),
        *(_Source(CREDIT, credit, free.names_in_full("m.search_vector")) for credit in _ALBUM_CREDITS),
    ]


def _artist_sources(free: _Free) -> list[_Source]:
    return [_Source(TITLE, "catalog.artists a", f"a.search_vector @@ {free.tsq}")]


KINDS: dict[str, _Kind] = {
    "track": _Kind(
        "catalog.tracks t",
        "title",
        _track_filters,
        _track_sources,
        credits=(f"catalog.artists m {_CREDITED_TRACKS}",),
        filters_read_album=True,
        popular_first=True,
    ),
    "album": _Kind("catalog.albums al", "title", _album_filters, _album_sources, credits=_ALBUM_CREDITS),
    "artist": _Kind("catalog.artists a", "name", _artist_filters, _artist_sources),
}


@dataclass(frozen=True)
class Statement:
    """One search statement: a single row of the page's ids (best first) and `total`."""

    sql: str
    params: dict[str, Any]


def build_search(kind: str, query: SearchQuery, limit: int, offset: int, *, fuzzy: bool) -> Statement:
    """The statement for one page of one type (exposed for EXPLAIN in tests and the benchmark)."""
    spec = KINDS[kind]
    sql = _Sql()
    where = " AND ".join(spec.filters(sql, query)) or "TRUE"
    cap = sql.bind(TOTAL_CAP)
    if not query.words:
        base = spec.base(where)
        page = sql.bind(limit), sql.bind(offset)
        return Statement(
            sql=(
                f"SELECT ARRAY(SELECT {spec.key} FROM {base} WHERE {where} "
                f"ORDER BY {spec.popularity} DESC, {spec.key} LIMIT {page[0]} OFFSET {page[1]}) AS ids, "
                f"(SELECT count(*) FROM (SELECT FROM {base} WHERE {where} LIMIT {cap}) matched) AS total"
            ),
            params=sql.params,
        )
    free = _Free.of(sql, query)
    if fuzzy:
        return _by_similarity(spec, sql, free, where, limit, offset, cap)
    return _by_text(spec, sql, free, where, limit, offset, cap)


def _by_text(spec: _Kind, sql: _Sql, free: _Free, where: str, limit: int, offset: int, cap: str) -> Statement:
    """Full text: the best `offset + limit` of each source by popularity, merged (see the module doc).

    The entity's own name is the one source that can match most of a big table ("love" in 15,000
    titles). Its matches are read through the GIN index up to the cap: when that is all of them,
    they are ranked and counted as they are; only past the cap does a second branch walk the
    popularity index for the best ones (a one-time filter skips it otherwise, which also keeps a
    word the planner wrongly thinks common from walking a million rows). Tracks read the popular
    band first (without filters; see POPULAR), and past the cap a band read in full that holds
    the page ranks it without the walk. Matches through a credit
    or an album name the artist or album in full, so they are few and collected once; and since
    they rank below every title hit, they are not even read when the title hits fill the page and
    pass the cap (a CTE runs only when something reads it).
    """
    own, *others = spec.sources(free)
    joins = spec.joins_for(where)
    wanted, over_cap = sql.bind(offset + limit), sql.bind(TOTAL_CAP + 1)

    def matches(source: _Source) -> str:
        return (
            f"SELECT {spec.key} AS id, {spec.popularity} AS popularity FROM {source.tables}{joins} "
            f"WHERE {source.condition} AND {where}"
        )

    def best(rows: str, exact: bool, tier: int, gate: str = "TRUE") -> str:
        return (
            f"(SELECT id, {exact} AS exact, {tier} AS tier, popularity FROM ({rows}) r "
            f"WHERE {gate} ORDER BY popularity DESC, id LIMIT {wanted})"
        )

    exact = _Source(TITLE, own.tables, f"strip({spec.vector}) = {free.vector}")
    own_count = "(SELECT count(*) FROM own)"
    ctes, own_rows = [], f"{matches(own)} LIMIT {over_cap}"
    if spec.popular_first:
        band = f"{spec.popularity} >= {POPULAR}"
        ctes.append(f"popular AS MATERIALIZED ({matches(own)} AND {band} LIMIT {over_cap})")
        if where == "TRUE":
            # The same rows, popular band first: the rest is read only when the band has too few.
            # (With filters, matches are mostly few, and the band would build the filter's bitmap
            # twice: there the band is read only when a page needs it, below.)
            own_rows = (
                f"SELECT * FROM popular UNION ALL ({matches(own)} AND NOT ({band}) "
                f"AND (SELECT count(*) FROM popular) < {over_cap}) LIMIT {over_cap}"
            )
    ctes.append(f"own AS MATERIALIZED ({own_rows})")
    ctes += [f"others_{n} AS MATERIALIZED ({matches(source)})" for n, source in enumerate(others)]
    hits = [
        best(matches(exact), True, TITLE),
        best("SELECT * FROM own", False, TITLE, gate=f"{own_count} <= {cap}"),
    ]
    walk = f"{own_count} > {cap}"
    if spec.popular_first:
        # Past the cap, the best title hits are the band's best when the band was read in full
        # and holds enough of them: every one of its rows outranks every row outside it.
        band_decides = f"(SELECT count(*) FROM popular) BETWEEN {wanted} AND {cap}"
        hits.append(best("SELECT * FROM popular", False, TITLE, gate=f"{walk} AND {band_decides}"))
        walk += f" AND NOT {band_decides}"
    hits += [
        best(matches(own), False, TITLE, gate=walk),
        *(
            best(f"SELECT * FROM others_{n}", False, source.tier, gate=f"{own_count} < {wanted}")
            for n, source in enumerate(others)
        ),
    ]
    counted = ["SELECT id FROM own", *(f"SELECT id FROM others_{n}" for n in range(len(others)))]
    ctes.append(f"hits AS ({' UNION ALL '.join(hits)})")
    limit_sql, offset_sql = sql.bind(limit), sql.bind(offset)
    return Statement(
        sql=(
            f"WITH {', '.join(ctes)}, "
            f"best AS (SELECT id, bool_or(exact) AS exact, max(tier) AS tier, max(popularity) AS popularity "
            f"FROM hits GROUP BY id) "
            f"SELECT ARRAY(SELECT id FROM best ORDER BY exact DESC, tier DESC, popularity DESC, id "
            f"LIMIT {limit_sql} OFFSET {offset_sql}) AS ids, "
            f"CASE WHEN {own_count} > {cap} THEN {cap} ELSE "
            f"(SELECT least(count(*), {cap}) FROM ({' UNION '.join(counted)}) matched) END AS total"
        ),
        params=sql.params,
    )


def _by_similarity(
    spec: _Kind, sql: _Sql, free: _Free, where: str, limit: int, offset: int, cap: str
) -> Statement:
    """Trigrams: every (typo-tolerant) match ranked by word similarity; trigram matches are few."""
    merged = (
        f"WITH hits AS ({' UNION ALL '.join(spec.similar(free))}), "
        f"best AS (SELECT id, max(rank) AS rank, max(popularity) AS popularity FROM hits GROUP BY id) "
    )
    source = "best"
    if where != "TRUE":
        # The filters run once over the merged set: inside each source they would be planned
        # (and their subqueries hashed) once per source.
        selected = f"SELECT best.* FROM best JOIN {spec.base(where)} ON {spec.key} = best.id WHERE {where}"
        merged += f", selected AS ({selected}) "
        source = "selected"
    limit_sql, offset_sql = sql.bind(limit), sql.bind(offset)
    return Statement(
        sql=(
            f"{merged}SELECT ARRAY(SELECT id FROM {source} ORDER BY rank DESC, popularity DESC, id "
            f"LIMIT {limit_sql} OFFSET {offset_sql}) AS ids, "
            f"(SELECT count(*) FROM (SELECT FROM {source} LIMIT {cap}) matched) AS total"
        ),
        params=sql.params,
    )


# The closest known word to each typed word the catalog does not have (the last one also not as
# a prefix): pg_trgm similarity over the vocabulary table, served by its trigram index. Words
# that are known come back unchanged; NULL means no known word is similar enough.
CORRECTIONS = """
SELECT w.n, k.known, CASE WHEN k.known THEN w.folded ELSE (
           SELECT s.word FROM catalog.search_words s WHERE s.word % w.folded
           ORDER BY s.word <-> w.folded, s.word LIMIT 1
       ) END AS word
FROM (
    SELECT n, n = cardinality(a.typed) AS last, catalog.immutable_unaccent(t.typed) AS folded
    FROM (SELECT CAST(:words AS text[]) AS typed) a, unnest(a.typed) WITH ORDINALITY AS t(typed, n)
) w
CROSS JOIN LATERAL (SELECT EXISTS (
    SELECT FROM catalog.search_words s
    WHERE s.word = w.folded OR (w.last AND s.word LIKE w.folded || '%')
) AS known) k
ORDER BY w.n
"""


# Set in each search's transaction. Plans depend on how selective the words are, so never reuse
# a generic plan (the driver prepares statements it has run a few times); the statements are
# short top-N sorts, for which parallel workers and JIT compilation cost more than they save;
# and every source has an index, so a sequential scan only wins in the planner's arithmetic
# (matches spread evenly, so "read 7% of the table to find 1,050"), not in time.
PLANNER_SETTINGS = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true)"
)


class SearchStore(SqlStore):
    async def search(self, kind: str, query: SearchQuery, limit: int, offset: int) -> SearchHits:
        """One page of `kind` ids matching `query`: full text; if that finds nothing, full text with
        misspelt words corrected against the vocabulary; if still nothing, trigrams on names."""
        if query.is_empty:
            return SearchHits([], 0)
        async with self.sessions() as session, session.begin():
            await session.execute(text(PLANNER_SETTINGS))
            hits = await self._page(session, kind, query, limit, offset, fuzzy=False)
            if hits.total == 0 and query.words:
                corrected = await corrected_query(session, query)
                if corrected is not None:
                    hits = await self._page(session, kind, corrected, limit, offset, fuzzy=False)
            if hits.total == 0 and query.words:
                hits = await self._page(session, kind, query, limit, offset, fuzzy=True)
            return hits

    async def _page(
        self, session: AsyncSession, kind: str, query: SearchQuery, limit: int, offset: int, *, fuzzy: bool
    ) -> SearchHits:
        statement = build_search(kind, query, limit, offset, fuzzy=fuzzy)
        row = (await session.execute(text(statement.sql), statement.params)).one()
        return SearchHits(list(row.ids), int(row.total))


async def corrected_query(session: AsyncSession, query: SearchQuery) -> SearchQuery | None:
    """`query` with each unknown word replaced by the closest known one; None when no word
    was unknown (the words exist, just not together) or one has nothing close enough."""
    rows = (await session.execute(text(CORRECTIONS), {"words": list(query.words)})).all()
    words = tuple(row.word for row in rows)
    if all(row.known for row in rows) or None in words:
        return None
    return replace(query, words=words, raw=" ".join(words))
