"""A listener in the browser: sign in, search with a typo, open the album, play.

The audio is the browser's own <audio> element on the signed media URL, so what is checked is
what a listener gets: the element's clock advancing, and the ranged requests it made.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Request, expect

from devdata import demo
from tests.web.conftest import app_page, until_seen

AUDIO_PLAYING_PAST = "s => (document.querySelector('audio')?.currentTime ?? 0) > s"


def media_requests(context: BrowserContext) -> list[Request]:
    seen: list[Request] = []
    context.on("request", lambda r: seen.append(r) if "/media/" in r.url else None)
    return seen


def test_sign_in_search_with_a_typo_open_the_album_and_play(
    open_context, running_mesh, demo_token: str, free_token: str, screens: Path
) -> None:
    context = open_context()
    seen = media_requests(context)
    page = app_page(context, "/")
    expect(page).to_have_url(re.compile(r"/app/$"))  # the edge's home is the player
    page.screenshot(path=screens / "sign-in.png")
    page.get_by_label("Email").fill("demo@example.com")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Demo Listener")

    # "Midnigth": the edge's search forgives a swapped letter. Typed key by key, faster than the
    # page's debounce: one search request, not one per key.
    searches: list[str] = []
    page.on("request", lambda r: "/v1/search" in r.url and searches.append(r.url))
    page.get_by_role("searchbox").press_sequentially("Midnigth", delay=40)
    results = page.get_by_role("list", name="Tracks found")
    expect(results).to_be_visible()
    assert len(searches) == 1, searches
    page.screenshot(path=screens / "search.png")
    first = results.get_by_role("listitem").first
    first.get_by_role("link").last.click()
    expect(page).to_have_url(re.compile(r"/app/album/"))
    page.screenshot(path=screens / "album.png")

    page.get_by_role("button", name=re.compile("^Play ")).first.click()
    page.wait_for_function(AUDIO_PLAYING_PAST, arg=2, timeout=20_000)
    expect(page.get_by_test_id("quality")).to_contain_text("320 kbps")
    page.screenshot(path=screens / "playing.png")
    ranged = [r for r in seen if "_320kbps.ogg" in r.url and "range" in r.headers]
    assert ranged, [r.url for r in seen]
    expect(page.get_by_test_id("now-playing")).to_have_attribute("data-track-id", demo.DEMO_TRACK_ID)
    # The play state is kept in the mesh: another device of the listener sees what is playing.
    bearer = {"authorization": f"Bearer {demo_token}"}
    elsewhere = httpx.get(f"{running_mesh.envoy_url}/v1/me/player/currently-playing", headers=bearer)
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.json()["item"]["id"] == demo.DEMO_TRACK_ID
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()

    def paused_in_the_mesh() -> bool:
        state = httpx.get(f"{running_mesh.envoy_url}/v1/me/player", headers=bearer)
        return state.status_code == 200 and state.json()["is_playing"] is False

    until_seen(page, paused_in_the_mesh, "the mesh to know the track is paused", 10)

    # The free listener gets the same track at 160 kbps.
    free = open_context(free_token)
    free_seen = media_requests(free)
    free_page = app_page(free, "/app/album/" + page.url.rsplit("/", 1)[1])
    free_page.get_by_role("button", name=re.compile("^Play ")).first.click()
    free_page.wait_for_function(AUDIO_PLAYING_PAST, arg=2, timeout=20_000)
    expect(free_page.get_by_test_id("quality")).to_contain_text("160 kbps")
    assert [r for r in free_seen if "_160kbps.ogg" in r.url and "range" in r.headers]
    assert not [r for r in free_seen if "_320kbps.ogg" in r.url]
