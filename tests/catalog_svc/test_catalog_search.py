"""Search: full text with accent folding and prefixes, the trigram fallback, filters, ranking, plans."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import grpc
import httpx
import psycopg
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from sqlalchemy import create_engine, text

from bench import catalog_gen
from catalog_svc.search_query import parse_query
from catalog_svc.search_store import CORRECTIONS, PLANNER_SETTINGS, POPULAR, TOTAL_CAP, build_search
from devdata import demo
from meshctl.datatier import libpq_url
from meshctl.mesh import Mesh
from meshkit import ids

if TYPE_CHECKING:
    from conftest import People

Stub = catalog_pb2_grpc.CatalogServiceStub
LOUD_VALLEYS = demo.DEMO_ARTIST_ID
ARTIST_TRACKS = demo.ALBUMS_PER_ARTIST * demo.TRACKS_PER_ALBUM  # every demo artist's track count


async def _search(
    catalog: Stub, q: str, kind: str = "track", **kwargs: int | str
) -> catalog_pb2.SearchResponse:
    return await catalog.Search(catalog_pb2.SearchRequest(q=q, type=kind, **kwargs))


def _tag() -> str:
    """A made-up word no other row contains (letters only, so it is one lexeme)."""
    return "zx" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
async def shelf(catalog: Stub, people: People, catalog_database_url: str) -> dict[str, str]:
    """An album of tracks made for ranking and filter tests, with popularity set where it matters."""
    admin = people.admin.metadata
    tag = _tag()
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name=f"Shelf {tag}", artist_ids=[people.artist_a_id], release_date="1994-03-02", genres=["folk"]
        ),
        metadata=admin,
    )
    titles = {
        "exact": f"Echo {tag}",
        "short": f"Echo {tag} Remix",
        "long": f"Deep Echo {tag} Dub",
        "quiet": f"Echo {tag} One",
        "loud": f"Echo {tag} Two",
        "misspelt": f"Kaleidoscope {tag}",
    }
    made = {"tag": tag, "album": album.id}
    for number, (key, title) in enumerate(titles.items(), start=1):
        track = await catalog.CreateTrack(
            catalog_pb2.CreateTrackRequest(album_id=album.id, name=title, track_number=number), metadata=admin
        )
        made[key] = track.id
    popularity = {"exact": 1, "short": 50, "long": 99, "quiet": 10, "loud": 90, "misspelt": 5}
    engine = create_engine(catalog_database_url)
    try:
        with engine.begin() as conn:
            for key, value in popularity.items():
                conn.execute(
                    text("UPDATE catalog.tracks SET popularity = :p WHERE id = :id"),
                    {"p": value, "id": ids.decode(made[key])},
                )
    finally:
        engine.dispose()
    return made


# ---- matching -----------------------------------------------------------------------------------


async def test_a_misspelt_word_still_finds_the_track(catalog: Stub, shelf: dict[str, str]) -> None:
    exact = await _search(catalog, f"Kaleidoscope {shelf['tag']}")
    assert [t.id for t in exact.tracks.items] == [shelf["misspelt"]]
    typo = await _search(catalog, f"Kaleidscope {shelf['tag']}")  # a letter missing
    assert shelf["misspelt"] in [t.id for t in typo.tracks.items]
    demo_typo = await _search(catalog, "Midnigth")
    assert demo.DEMO_TRACK_ID in [t.id for t in demo_typo.tracks.items]


async def test_accents_fold_both_ways(catalog: Stub) -> None:
    anais = await _search(catalog, "Anais", "artist")
    assert [a.name for a in anais.artists.items][:1] == ["Anaïs Strings"]
    cafe = await _search(catalog, "cafe", "artist")
    assert "Café Nocturne" in [a.name for a in cafe.artists.items]
    accented = await _search(catalog, "CAFÉ NOCTURNE", "artist")
    assert accented.artists.items[0].name == "Café Nocturne"
    # Naming an artist in full finds their tracks too.
    tracks = await _search(catalog, "anais strings", "track")
    anais_id = ids.encode(demo.demo_uuid("artist:Anaïs Strings"))
    assert tracks.tracks.total == ARTIST_TRACKS
    assert all(t.artists[0].id == anais_id for t in tracks.tracks.items)


async def test_the_last_word_is_a_prefix(catalog: Stub) -> None:
    found = await _search(catalog, "the loud vall", "artist")
    assert found.artists.items[0].id == LOUD_VALLEYS
    assert (await _search(catalog, "loud val", "track")).tracks.total == ARTIST_TRACKS  # the band's tracks


async def test_nothing_found_is_an_empty_page(catalog: Stub) -> None:
    reply = await _search(catalog, "qqxjvwqq", "track,album,artist")
    for page in (reply.tracks, reply.albums, reply.artists):
        assert (page.total, list(page.items), page.next) == (0, [], "")
    punctuation = await _search(catalog, "?!", "track")
    assert punctuation.tracks.total == 0


# ---- filters --------------------------------------------------------------------------------------


async def test_artist_filter_with_a_quoted_value(catalog: Stub) -> None:
    found = await _search(catalog, 'artist:"the loud"', "track", limit=50)
    assert found.tracks.total == ARTIST_TRACKS
    assert {t.artists[0].id for t in found.tracks.items} == {LOUD_VALLEYS}
    albums = await _search(catalog, 'artist:"the loud"', "album")
    assert albums.albums.total == demo.ALBUMS_PER_ARTIST


async def test_year_filter_single_and_range(catalog: Stub) -> None:
    one = await _search(catalog, 'artist:"loud valleys" year:2015', "track", limit=50)
    assert one.tracks.total == 5 and {t.album.release_date for t in one.tracks.items} == {"2015-01-01"}
    both = await _search(catalog, 'artist:"loud valleys" year:2015-2016', "track", limit=50)
    assert both.tracks.total == 2 * demo.TRACKS_PER_ALBUM  # the 2015 and 2016 albums, not 2017
    none = await _search(catalog, 'artist:"loud valleys" year:1990-1999', "track")
    assert none.tracks.total == 0
    artists = await _search(catalog, "loud year:2016", "artist")
    assert [a.id for a in artists.artists.items] == [LOUD_VALLEYS]


async def test_album_track_and_genre_filters(catalog: Stub, shelf: dict[str, str]) -> None:
    tag = shelf["tag"]
    on_album = await _search(catalog, f"album:{tag}", "track", limit=50)
    assert on_album.tracks.total == 6 and {t.album.id for t in on_album.tracks.items} == {shelf["album"]}
    narrowed = await _search(catalog, f'echo album:"shelf {tag}" track:remix', "track")
    assert [t.id for t in narrowed.tracks.items] == [shelf["short"]]
    by_track = await _search(catalog, f'track:"kaleidoscope {tag}"', "album")
    assert [a.id for a in by_track.albums.items] == [shelf["album"]]
    folk_nineties = await _search(catalog, f"{tag} genre:folk year:1990-1999", "track")
    assert folk_nineties.tracks.total == 6
    assert (await _search(catalog, f"{tag} genre:jazz", "track")).tracks.total == 0
    jazz = await _search(catalog, "genre:jazz", "artist", limit=50)
    names = {a.name for a in jazz.artists.items}
    assert {"Blue Hour Quartet", "Café Nocturne"} <= names
    assert all("jazz" in a.genres for a in jazz.artists.items)
    hip_hop = await _search(catalog, 'genre:"hip hop"', "artist", limit=50)
    assert {"MC Parallax", "Concrete Verse"} <= {a.name for a in hip_hop.artists.items}


async def test_filters_follow_writes_to_albums_artists_and_credits(catalog: Stub, people: People) -> None:
    """Tracks carry copies of their album's genres and date and their artists' names and genres
    (kept by triggers); every write that changes one of those must show in the next search.
    Only the demo's genres are used: the mesh's genre seeds are expected to be exactly those."""
    admin, tag = people.admin.metadata, _tag()
    singer = await catalog.CreateArtist(
        catalog_pb2.CreateArtistRequest(name=f"Singer {tag}", genres=["jazz"]), metadata=admin
    )
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name=f"Record {tag}", artist_ids=[people.artist_a_id], release_date="1977-01-01", genres=["folk"]
        ),
        metadata=admin,
    )
    track = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album.id, name=f"Song {tag}", track_number=1), metadata=admin
    )

    async def found(q: str) -> list[str]:
        return [t.id for t in (await _search(catalog, q, "track")).tracks.items]

    assert await found(f"song {tag} genre:folk year:1977") == [track.id]
    assert await found(f"song {tag} genre:jazz") == []
    assert await found(f'artist:"singer {tag}"') == []
    await catalog.UpdateTrack(
        catalog_pb2.UpdateTrackRequest(
            id=track.id,
            artist_ids=[people.artist_a_id, singer.id],
            update_mask=FieldMask(paths=["artist_ids"]),
        ),
        metadata=admin,
    )
    assert await found(f"song {tag} genre:jazz") == [track.id]  # the new credit's genre
    assert await found(f'artist:"singer {tag}" year:1977') == [track.id]
    await catalog.UpdateArtist(
        catalog_pb2.UpdateArtistRequest(
            id=singer.id,
            name=f"Crooner {tag}",
            genres=["classical"],
            update_mask=FieldMask(paths=["name", "genres"]),
        ),
        metadata=admin,
    )
    assert await found(f'artist:"singer {tag}"') == []
    assert await found(f'artist:"crooner {tag}" genre:classical') == [track.id]
    assert await found(f"song {tag} genre:jazz") == []
    await catalog.UpdateAlbum(
        catalog_pb2.UpdateAlbumRequest(
            id=album.id,
            release_date="1980-06-01",
            genres=["ambient"],
            update_mask=FieldMask(paths=["release_date", "genres"]),
        ),
        metadata=admin,
    )
    assert await found(f"song {tag} year:1977") == []
    assert await found(f"song {tag} genre:ambient year:1980") == [track.id]
    assert await found(f"song {tag} genre:folk") == []


# ---- ranking --------------------------------------------------------------------------------------


async def test_exact_name_first_then_popularity(catalog: Stub, shelf: dict[str, str]) -> None:
    found = await _search(catalog, f"echo {shelf['tag']}", "track")
    order = [t.id for t in found.tracks.items]
    assert order[0] == shelf["exact"]  # least popular, but its name is the query
    assert order[1:] == [shelf["long"], shelf["loud"], shelf["short"], shelf["quiet"]]


async def test_a_title_hit_outranks_an_album_hit(
    catalog: Stub, people: People, shelf: dict[str, str]
) -> None:
    """ "shelf <tag>" names the shelf's album in full, so its six tracks match through the album;
    a track elsewhere whose own title has those words ranks above them all, popularity 0 or not."""
    admin = people.admin.metadata
    elsewhere = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name=f"Elsewhere {_tag()}", artist_ids=[people.artist_a_id], release_date="2001-05-05"
        ),
        metadata=admin,
    )
    reprise = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(
            album_id=elsewhere.id, name=f"Shelf {shelf['tag']} Reprise", track_number=1
        ),
        metadata=admin,
    )
    found = await _search(catalog, f"shelf {shelf['tag']}", "track", limit=50)
    assert found.tracks.total == 7
    by_album = [shelf[key] for key in ("long", "loud", "short", "quiet", "misspelt", "exact")]
    assert [t.id for t in found.tracks.items] == [reprise.id, *by_album]


# ---- request handling and paging ------------------------------------------------------------------


async def test_each_type_gets_its_own_paging_object(catalog: Stub) -> None:
    reply = await _search(catalog, "loud valleys", "track,artist", limit=3)
    assert reply.HasField("tracks") and reply.HasField("artists") and not reply.HasField("albums")
    assert (reply.tracks.total, len(reply.tracks.items), reply.tracks.limit) == (ARTIST_TRACKS, 3, 3)
    assert reply.artists.total == 1
    assert (
        reply.tracks.next
        == "http://catalog.test/v1/search?q=loud+valleys&type=track%2Cartist&offset=3&limit=3"
    )
    page2 = await _search(
        catalog, "loud valleys", "track", page_size=3, page_token=reply.tracks.next_page_token
    )
    first_ids = [t.id for t in reply.tracks.items]
    assert page2.tracks.offset == 3 and not {t.id for t in page2.tracks.items} & set(first_ids)
    beyond = await _search(catalog, "loud valleys", "track", offset=40)
    assert (beyond.tracks.total, list(beyond.tracks.items)) == (ARTIST_TRACKS, [])


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"q": "x"}, "type"),
        ({"q": "x", "type": "track,playlist"}, "playlist"),
        ({"q": "", "type": "track"}, "q"),
        ({"q": "x", "type": "track", "limit": 51}, "limit"),
        ({"q": "x", "type": "track", "offset": 1001}, "offset"),
        ({"q": "year:19xx", "type": "track"}, "year"),
    ],
)
async def test_bad_searches_are_invalid_arguments(catalog: Stub, request_fields: dict, message: str) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await catalog.Search(catalog_pb2.SearchRequest(**request_fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.value.details()


# ---- query plans ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated_catalog(scratch_database_url: str) -> Iterator[str]:
    """20,000 generated tracks (2,000 albums, 1,000 artists) in the scratch database, and a rare word."""
    catalog_gen.generate(scratch_database_url, 20_000, seed=3, replace=True, log=lambda _: None)
    with psycopg.connect(libpq_url(scratch_database_url)) as conn:
        for table, column in (("tracks", "title"), ("albums", "title"), ("artists", "name")):
            conn.execute(
                f"UPDATE catalog.{table} SET {column} = 'Quixotic Lantern' "
                f"WHERE id = (SELECT id FROM catalog.{table} ORDER BY id LIMIT 1)"
            )
            conn.execute(f"ANALYZE catalog.{table}")
    yield scratch_database_url


def _psycopg(sql: str) -> str:
    """SQLAlchemy's `:name` parameters as psycopg's `%(name)s` (and literal % doubled)."""
    return re.sub(r"(?<!:):([a-z]\w*)\b", r"%(\1)s", sql.replace("%", "%%"))


def _plan(url: str, kind: str, q: str, *, fuzzy: bool) -> str:
    statement = build_search(kind, parse_query(q), 20, 0, fuzzy=fuzzy)
    sql = _psycopg(statement.sql)
    with psycopg.connect(libpq_url(url)) as conn:  # one transaction, as the store runs it
        conn.execute(PLANNER_SETTINGS)
        rows = conn.execute("EXPLAIN " + sql, statement.params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_generated_catalog_has_the_requested_size(generated_catalog: str) -> None:
    with psycopg.connect(libpq_url(generated_catalog)) as conn:
        tracks, albums, artists = conn.execute(
            "SELECT (SELECT count(*) FROM catalog.tracks), (SELECT count(*) FROM catalog.albums), "
            "(SELECT count(*) FROM catalog.artists)"
        ).fetchone()
    assert (tracks, albums, artists) == (20_000, 2000, 1000)


@pytest.mark.parametrize(
    ("kind", "q", "index"),
    [
        ("track", "quixotic", "ix_tracks_search_vector"),
        ("track", "quixotic lant", "ix_tracks_search_vector"),
        ("album", "quixotic", "ix_albums_search_vector"),
        ("artist", "quixotic", "ix_artists_search_vector"),
    ],
)
def test_full_text_plans_use_the_gin_indexes(generated_catalog: str, kind: str, q: str, index: str) -> None:
    assert index in _plan(generated_catalog, kind, q, fuzzy=False)


@pytest.mark.parametrize(
    ("kind", "index"),
    [
        ("track", "ix_tracks_title_trgm"),
        ("album", "ix_albums_title_trgm"),
        ("artist", "ix_artists_name_trgm"),
    ],
)
def test_fuzzy_plans_use_the_trigram_indexes(generated_catalog: str, kind: str, index: str) -> None:
    assert index in _plan(generated_catalog, kind, "quixtoic", fuzzy=True)


def _page(url: str, kind: str, q: str, limit: int, offset: int) -> tuple[list[uuid.UUID], int]:
    statement = build_search(kind, parse_query(q), limit, offset, fuzzy=False)
    sql = _psycopg(statement.sql)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(PLANNER_SETTINGS)
        row = conn.execute(sql, statement.params).fetchone()
    assert row is not None
    return list(row[0]), row[1]


@pytest.mark.parametrize(("kind", "q"), [("track", "s"), ("track", "love"), ("album", "s"), ("artist", "s")])
def test_pages_are_slices_of_the_whole_ranking(generated_catalog: str, kind: str, q: str) -> None:
    """Each source is cut to its best offset + limit before merging: the pages must still be the
    slices of the ranking of every match (which a limit past the catalog's size computes)."""
    everything, _ = _page(generated_catalog, kind, q, 10**6, 0)
    assert len(everything) > 100  # common enough for the cut to matter
    for offset in (0, 20, 37, 100):
        page, total = _page(generated_catalog, kind, q, 20, offset)
        assert page == everything[offset : offset + 20]
        assert total == min(len(everything), TOTAL_CAP)


def test_total_stops_counting_at_the_cap(generated_catalog: str) -> None:
    everything, total = _page(generated_catalog, "track", "s", 10**6, 0)  # every word starting with s
    assert len(everything) > TOTAL_CAP and total == TOTAL_CAP
    rare, rare_total = _page(generated_catalog, "track", "quixotic", 20, 0)
    assert rare_total == len(rare) == 1


def test_past_the_cap_the_popular_band_ranks_the_first_pages(generated_catalog: str) -> None:
    """A word past the cap ranks its title hits from the popular band while the band holds the
    whole page, and walks the popularity index once a page reaches past the band: both sides of
    that line must be slices of the same ranking."""
    with psycopg.connect(libpq_url(generated_catalog)) as conn:
        popular = conn.execute(
            "SELECT count(*) FROM catalog.tracks "
            "WHERE search_vector @@ to_tsquery('simple', 's:*') AND popularity >= %s",
            (POPULAR,),
        ).fetchone()[0]
    everything, total = _page(generated_catalog, "track", "s", 10**6, 0)
    assert total == TOTAL_CAP and 40 <= popular <= TOTAL_CAP  # the case this test is about
    for offset in (0, popular - 20, popular - 10):  # the band's last full page, then one past it
        page, _ = _page(generated_catalog, "track", "s", 20, offset)
        assert page == everything[offset : offset + 20]


def test_exact_names_come_from_their_index(generated_catalog: str) -> None:
    assert "ix_tracks_exact_name" in _plan(generated_catalog, "track", "quixotic lantern", fuzzy=False)


def _corrections(url: str, *words: str) -> list[tuple[bool, str | None]]:
    sql = _psycopg(CORRECTIONS)
    with psycopg.connect(libpq_url(url)) as conn:
        return [(known, word) for _, known, word in conn.execute(sql, {"words": list(words)})]


def test_unknown_words_are_corrected_to_the_closest_known_word(generated_catalog: str) -> None:
    assert _corrections(generated_catalog, "grden") == [(False, "garden")]
    assert _corrections(generated_catalog, "golden", "rivr") == [(True, "golden"), (False, "river")]
    assert _corrections(generated_catalog, "riv", "gold") == [(False, "river"), (True, "gold")]  # a prefix
    assert _corrections(generated_catalog, "zoë", "qqxjvwqq") == [(True, "zoe"), (False, None)]


def test_new_names_join_the_vocabulary_at_once(generated_catalog: str) -> None:
    word = _tag()
    assert _corrections(generated_catalog, word[:-1] + "q") == [(False, None)]
    with psycopg.connect(libpq_url(generated_catalog)) as conn:
        conn.execute("INSERT INTO catalog.artists (id, name) VALUES (%s, %s)", (uuid.uuid4(), f"The {word}"))
    assert _corrections(generated_catalog, word[:-1] + "q") == [(False, word)]


# ---- JSON through Envoy -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def envoy(running_mesh: Mesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[httpx.Client]:
    """JSON through Envoy as a fresh user (search is rate-limited per user); a failed registration
    or login fails the tests."""
    _email, _password, token = new_account("Searcher")
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10, headers=headers) as client:
        yield client


@pytest.mark.e2e
def test_json_search_as_spotify_clients_call_it(envoy: httpx.Client, running_mesh: Mesh) -> None:
    reply = envoy.get("/v1/search", params={"q": "cafe nocturne", "type": "artist,album", "limit": 1})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["artists"]["items"][0]["name"] == "Café Nocturne"
    assert body["albums"]["total"] == demo.ALBUMS_PER_ARTIST and len(body["albums"]["items"]) == 1
    following = envoy.get(body["albums"]["next"]).json()  # absolute URLs that work as given
    assert following["albums"]["offset"] == 1 and following["albums"]["items"]
    assert "tracks" not in body  # only the types asked for
    plus = envoy.get("/v1/search?q=loud+valleys&type=track").json()  # `+` is a space, as on Spotify
    assert plus["tracks"]["total"] == ARTIST_TRACKS
    assert envoy.get("/v1/search", params={"q": "x"}).status_code == 400
