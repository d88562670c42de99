"""meshkit.paging: the one offset-paging rule every list RPC shares."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from meshkit import paging
from meshkit.errors import InvalidArgument


def test_limit_wins_over_page_size_and_the_default_fills_in() -> None:
    assert paging.window(limit=5, page_size=9).limit == 5
    assert paging.window(page_size=9).limit == 9
    assert paging.window(default=7).limit == 7


def test_a_page_token_round_trips_and_wins_over_offset() -> None:
    token = paging.encode_token(40)
    assert paging.decode_token(token) == 40
    assert paging.window(offset=4, page_token=token) == paging.Window(offset=40, limit=20)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": -1},
        {"limit": 51},
        {"page_size": 51},
        {"page_size": -3},
        {"offset": -1},
        {"page_token": "40"},  # not opaque: a bare offset is not a token we issued
        {"page_token": "!!!"},
        {"page_token": paging.encode_token("x")},
        {"page_token": paging.encode_token(5, kind="c")},
        {"page_token": paging.encode_token(10**10)},
    ],
)
def test_values_spotify_would_reject_are_invalid_argument(kwargs: dict) -> None:
    with pytest.raises(InvalidArgument):
        paging.window(**kwargs)


def test_max_offset_bounds_the_window_and_the_next_link() -> None:
    with pytest.raises(InvalidArgument, match="at most 1000"):
        paging.window(offset=1001, max_offset=1000)
    last = paging.window(offset=1000, limit=50, max_offset=1000)
    assert paging.links("http://x/v1/search", last, total=5000).next == ""
    before = paging.window(offset=950, limit=50, max_offset=1000)
    assert paging.links("http://x/v1/search", before, total=5000).next != ""


def test_links_continue_the_same_list() -> None:
    page = paging.window(offset=20, limit=10)
    nav = paging.links("http://x/v1/albums/1/tracks", page, total=35, params={"market": "SE", "q": ""})
    assert parse_qs(urlsplit(nav.next).query) == {"market": ["SE"], "offset": ["30"], "limit": ["10"]}
    assert parse_qs(urlsplit(nav.previous).query)["offset"] == ["10"]
    assert parse_qs(urlsplit(nav.href).query)["offset"] == ["20"]
    assert paging.decode_token(nav.next_page_token) == 30
    last = paging.links("http://x/v1/albums/1/tracks", paging.window(offset=30, limit=10), total=35)
    assert (last.next, last.next_page_token) == ("", "")
    first = paging.links("http://x/v1/albums/1/tracks", paging.window(limit=10), total=35)
    assert first.previous == ""


def test_a_list_without_links_gets_the_same_next_page_token() -> None:
    page = paging.window(offset=20, limit=10)
    assert paging.next_page_token(page, 35) == paging.links("http://x/l", page, 35).next_page_token
    assert paging.decode_token(paging.next_page_token(page, 35)) == 30
    assert paging.next_page_token(paging.window(offset=30, limit=10), 35) == ""


def test_page_fields_are_the_links_and_the_window() -> None:
    page = paging.window(offset=10, limit=10)
    fields = paging.page_fields("http://x/v1/me/tracks", page, total=25)
    nav = paging.links("http://x/v1/me/tracks", page, total=25)
    assert fields == {
        "href": nav.href,
        "next": nav.next,
        "previous": nav.previous,
        "next_page_token": nav.next_page_token,
        "limit": 10,
        "offset": 10,
        "total": 25,
    }
