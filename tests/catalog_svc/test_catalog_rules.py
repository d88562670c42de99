"""The catalog's pure rules: paging windows and links (meshkit.paging, as catalog lists use it),
search syntax, request validation."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog_svc import rules
from catalog_svc.search_query import YearRange, parse_query, parse_types, tsquery_text
from meshkit import paging
from meshkit.errors import InvalidArgument

# ---- paging -----------------------------------------------------------------------------------


def test_window_defaults_and_aip_fallbacks() -> None:
    assert paging.window() == paging.Window(offset=0, limit=20)
    assert paging.window(limit=5, offset=10) == paging.Window(offset=10, limit=5)
    assert paging.window(page_size=7) == paging.Window(offset=0, limit=7)
    assert paging.window(limit=3, page_size=7) == paging.Window(offset=0, limit=3)  # Spotify's limit wins
    token = paging.encode_token(40)
    assert paging.window(offset=4, page_token=token) == paging.Window(offset=40, limit=20)  # the token wins


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
        paging.window(**kwargs)


def test_search_offset_has_a_ceiling() -> None:
    assert paging.window(offset=1000, max_offset=1000).offset == 1000
    with pytest.raises(InvalidArgument, match="at most 1000"):
        paging.window(offset=1001, max_offset=1000)


def test_links_navigate_forward_and_back_and_keep_the_query() -> None:
    nav = paging.links(
        "http://x/v1/search",
        paging.Window(offset=10, limit=10),
        25,
        {"q": "a b", "type": "track", "market": ""},
    )
    assert nav.href == "http://x/v1/search?q=a+b&type=track&offset=10&limit=10"
    assert nav.next == "http://x/v1/search?q=a+b&type=track&offset=20&limit=10"
    assert nav.previous == "http://x/v1/search?q=a+b&type=track&offset=0&limit=10"
    assert paging.decode_token(nav.next_page_token) == 20
    last = paging.links("http://x/l", paging.Window(offset=20, limit=10), 25)
    assert (last.next, last.next_page_token) == ("", "")
    first = paging.links("http://x/l", paging.Window(offset=0, limit=10), 25)
    assert first.previous == ""
    assert (
        paging.links("http://x/l", paging.Window(offset=3, limit=10), 25).previous
        == "http://x/l?offset=0&limit=10"
    )


def test_next_never_points_past_the_offset_limit() -> None:
    """Search accepts offsets up to 1,000: a next link beyond would only earn a 400."""
    near_end = paging.window(limit=20, offset=980, max_offset=1000)
    assert paging.links("http://x/s", near_end, 1050).next == "http://x/s?offset=1000&limit=20"
    at_end = paging.window(limit=20, offset=1000, max_offset=1000)
    nav = paging.links("http://x/s", at_end, 1050)
    assert (nav.next, nav.next_page_token) == ("", "")
    assert paging.links("http://x/l", paging.window(limit=20, offset=1000), 1050).next != ""


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
    assert rules.market("se") == "SE"
    assert rules.market("") == rules.market("from_token") == ""
    with pytest.raises(InvalidArgument):
        rules.market("SWE")
    assert rules.include_groups("single,album") == ("album", "single")
    assert rules.include_groups("") == ("album", "single", "compilation", "appears_on")
    with pytest.raises(InvalidArgument, match="mixtape"):
        rules.include_groups("album,mixtape")


# ---- write validation -------------------------------------------------------------------------


def test_names_are_trimmed_and_bounded() -> None:
    assert rules.name("  Night   Drive ") == "Night Drive"
    assert rules.name("x" * 200) == "x" * 200
    for bad in ("", "   ", "x" * 201, "bell\x07"):
        with pytest.raises(InvalidArgument, match="name"):
            rules.name(bad)


def test_release_dates_follow_their_precision() -> None:
    assert rules.release_date("1999") == rules.ReleaseDate(dt.date(1999, 1, 1), "year")
    assert rules.release_date("1999-05") == rules.ReleaseDate(dt.date(1999, 5, 1), "month")
    assert rules.release_date("1999-05-17", "day") == rules.ReleaseDate(dt.date(1999, 5, 17), "day")
    for value, precision in (
        ("1999-13", ""),
        ("1999-02-30", ""),
        ("99", ""),
        ("1999", "day"),
        ("1999", "week"),
    ):
        with pytest.raises(InvalidArgument, match="release_date"):
            rules.release_date(value, precision)


def test_other_field_rules() -> None:
    assert rules.album_type("") == "album"
    assert rules.album_type("EP") == "ep"
    with pytest.raises(InvalidArgument, match="album_type"):
        rules.album_type("mixtape")
    assert rules.genres(["Rock", "rock", " Hip  Hop "]) == ("rock", "hip hop")
    with pytest.raises(InvalidArgument, match="genres"):
        rules.genres([f"g{i}" for i in range(11)])
    assert rules.isrc("us-rc1-76-07839") == "USRC17607839"
    with pytest.raises(InvalidArgument, match="isrc"):
        rules.isrc("nope")
    assert rules.upc("") is None
    with pytest.raises(InvalidArgument, match="upc"):
        rules.upc("12345")
    with pytest.raises(InvalidArgument, match="images"):
        rules.images([("ftp://x/a.png", 10, 10)])
    with pytest.raises(InvalidArgument, match="track_number"):
        rules.track_number(0)
    with pytest.raises(InvalidArgument, match="copyrights"):
        rules.copyrights([("(c) 2020", "X")])
    assert rules.markets(["se", "SE", "de"]) == ("SE", "DE")


def test_update_fields_come_from_the_mask_or_from_presence() -> None:
    allowed = ("name", "genres")
    assert rules.fields_to_change(["genres"], {"name"}, allowed) == {"genres"}
    assert rules.fields_to_change([], {"name"}, allowed) == {"name"}
    with pytest.raises(InvalidArgument, match="nothing to update"):
        rules.fields_to_change([], set(), allowed)
    with pytest.raises(InvalidArgument, match="update_mask"):
        rules.fields_to_change(["popularity"], set(), allowed)
