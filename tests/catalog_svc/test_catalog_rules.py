"""The catalog's pure rules: paging windows and links, search syntax, write validation."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog_svc import fields, paging, writes
from catalog_svc.search_query import YearRange, parse_query, parse_types, tsquery_text
from meshkit.errors import InvalidArgument

# ---- paging -----------------------------------------------------------------------------------


def test_window_defaults_and_aip_fallbacks() -> None:
    assert paging.resolve() == paging.Window(20, 0)
    assert paging.resolve(limit=5, offset=10) == paging.Window(5, 10)
    assert paging.resolve(page_size=7) == paging.Window(7, 0)
    assert paging.resolve(limit=3, page_size=7) == paging.Window(3, 0)  # Spotify's limit wins
    assert paging.resolve(offset=4, page_token="40") == paging.Window(20, 40)  # the token wins


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 51},
        {"limit": -1},
        {"offset": -1},
        {"page_size": 99},
        {"page_token": "abc"},
        {"page_token": "-5"},
    ],
)
def test_window_rejects_what_spotify_rejects(kwargs: dict) -> None:
    with pytest.raises(InvalidArgument):
        paging.resolve(**kwargs)


def test_search_offset_has_a_ceiling() -> None:
    assert paging.resolve(offset=1000, max_offset=1000).offset == 1000
    with pytest.raises(InvalidArgument, match="at most 1000"):
        paging.resolve(offset=1001, max_offset=1000)


def test_links_navigate_forward_and_back_and_keep_the_query() -> None:
    nav = paging.links(
        "http://x/v1/search", paging.Window(10, 10), 25, {"q": "a b", "type": "track", "market": ""}
    )
    assert nav.href == "http://x/v1/search?q=a+b&type=track&offset=10&limit=10"
    assert nav.next == "http://x/v1/search?q=a+b&type=track&offset=20&limit=10"
    assert nav.previous == "http://x/v1/search?q=a+b&type=track&offset=0&limit=10"
    assert nav.next_page_token == "20"
    last = paging.links("http://x/l", paging.Window(10, 20), 25)
    assert (last.next, last.next_page_token) == ("", "")
    first = paging.links("http://x/l", paging.Window(10, 0), 25)
    assert first.previous == ""
    assert paging.links("http://x/l", paging.Window(10, 3), 25).previous == "http://x/l?offset=0&limit=10"


def test_next_never_points_past_the_offset_limit() -> None:
    """Search accepts offsets up to 1,000: a next link beyond would only earn a 400."""
    near_end = paging.resolve(limit=20, offset=980, max_offset=1000)
    assert paging.links("http://x/s", near_end, 1050).next == "http://x/s?offset=1000&limit=20"
    at_end = paging.resolve(limit=20, offset=1000, max_offset=1000)
    nav = paging.links("http://x/s", at_end, 1050)
    assert (nav.next, nav.next_page_token) == ("", "")
    assert paging.links("http://x/l", paging.resolve(limit=20, offset=1000), 1050).next != ""


# ---- search syntax ----------------------------------------------------------------------------


def test_free_text_and_every_filter() -> None:
    q = parse_query('Midnight  artist:"The Loud" album:valleys track:echo year:1990-1999 genre:"Hip Hop"')
    assert q.words == ("midnight",)
    assert q.artist == (("the", "loud"),)
    assert q.album == (("valleys",),)
    assert q.track == (("echo",),)
    assert q.years == (YearRange(1990, 1999),)
    assert q.genres == (("hip hop", "hip-hop"),)


def test_single_year_unknown_fields_and_punctuation() -> None:
    q = parse_query("year:2015 re:stacks don't-stop!")
    assert q.years == (YearRange(2015, 2015),)
    assert q.words == ("re", "stacks", "don", "t", "stop")
    assert parse_query("?!").is_empty


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "required"),
        ("   ", "required"),
        ("year:19x0", "year"),
        ("year:2000-1990", "ends before"),
        ('artist:"  "', "artist"),
        ("x" * 501, "at most"),
    ],
)
def test_bad_queries_are_invalid_arguments(q: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_query(q)


def test_tsquery_requires_every_word_and_prefixes_the_last() -> None:
    assert tsquery_text(("midnight", "ech")) == "'midnight' & 'ech':*"


def test_types_are_required_validated_and_ordered() -> None:
    assert parse_types("track,artist,track") == ("artist", "track")
    with pytest.raises(InvalidArgument, match="required"):
        parse_types("")
    with pytest.raises(InvalidArgument, match="playlist"):
        parse_types("track,playlist")


# ---- request fields ---------------------------------------------------------------------------


def test_market_and_include_groups() -> None:
    assert fields.market("se") == "SE"
    assert fields.market("") == fields.market("from_token") == ""
    with pytest.raises(InvalidArgument):
        fields.market("SWE")
    assert fields.include_groups("single,album") == ("album", "single")
    assert fields.include_groups("") == ("album", "single", "compilation", "appears_on")
    with pytest.raises(InvalidArgument, match="mixtape"):
        fields.include_groups("album,mixtape")


# ---- write validation -------------------------------------------------------------------------


def test_names_are_trimmed_and_bounded() -> None:
    assert writes.name("  Night   Drive ") == "Night Drive"
    assert writes.name("x" * 200) == "x" * 200
    for bad in ("", "   ", "x" * 201, "bell\x07"):
        with pytest.raises(InvalidArgument, match="name"):
            writes.name(bad)


def test_release_dates_follow_their_precision() -> None:
    assert writes.release_date("1999") == writes.ReleaseDate(dt.date(1999, 1, 1), "year")
    assert writes.release_date("1999-05") == writes.ReleaseDate(dt.date(1999, 5, 1), "month")
    assert writes.release_date("1999-05-17", "day") == writes.ReleaseDate(dt.date(1999, 5, 17), "day")
    for value, precision in (
        ("1999-13", ""),
        ("1999-02-30", ""),
        ("99", ""),
        ("1999", "day"),
        ("1999", "week"),
    ):
        with pytest.raises(InvalidArgument, match="release_date"):
            writes.release_date(value, precision)


def test_other_field_rules() -> None:
    assert writes.album_type("") == "album"
    assert writes.album_type("EP") == "ep"
    with pytest.raises(InvalidArgument, match="album_type"):
        writes.album_type("mixtape")
    assert writes.genres(["Rock", "rock", " Hip  Hop "]) == ("rock", "hip hop")
    with pytest.raises(InvalidArgument, match="genres"):
        writes.genres([f"g{i}" for i in range(11)])
    assert writes.isrc("us-rc1-76-07839") == "USRC17607839"
    with pytest.raises(InvalidArgument, match="isrc"):
        writes.isrc("nope")
    assert writes.upc("") is None
    with pytest.raises(InvalidArgument, match="upc"):
        writes.upc("12345")
    with pytest.raises(InvalidArgument, match="images"):
        writes.images([("ftp://x/a.png", 10, 10)])
    with pytest.raises(InvalidArgument, match="track_number"):
        writes.track_number(0)
    with pytest.raises(InvalidArgument, match="copyrights"):
        writes.copyrights([("(c) 2020", "X")])
    assert writes.markets(["se", "SE", "de"]) == ("SE", "DE")


def test_update_fields_come_from_the_mask_or_from_presence() -> None:
    allowed = ("name", "genres")
    assert writes.fields_to_change(["genres"], {"name"}, allowed) == {"genres"}
    assert writes.fields_to_change([], {"name"}, allowed) == {"name"}
    with pytest.raises(InvalidArgument, match="nothing to update"):
        writes.fields_to_change([], set(), allowed)
    with pytest.raises(InvalidArgument, match="update_mask"):
        writes.fields_to_change(["popularity"], set(), allowed)
