"""A signed URL that expires mid-track: the page asks for a new one and plays on from the same place.

The test holds the browser's link to the media origin for the first URL: its first request gets
only the start of the file (a server may answer a range with fewer bytes), and the requests for
the audio after it wait, so playback runs dry while the URL expires. The player must notice, ask
for a new URL and resume where the listener was.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from playwright.sync_api import Page, Response, Route

from devdata import demo
from tests.web.conftest import app_page, until_seen

# What the browser gets before the URL expires: a few seconds of audio.
FIRST_BYTES = 64 * 1024
# Every timeupdate of the page's audio: the URL, the position, and whether it had audio there (a new
# source reports position 0 before it has loaded anything).
RECORD_TIMES = """
window.__times = [];
document.addEventListener(
  'timeupdate', (e) => window.__times.push([e.target.src, e.target.currentTime, e.target.readyState]), true);
"""


class HeldLink:
    """The page's link to /media/: of the first URL it is given, the start of the file at once and
    the audio after it held (never answered); every other URL passes."""

    def __init__(self, page: Page) -> None:
        self.held: list[Route] = []
        self.total: int | None = None
        self.first: str | None = None
        page.route("**/media/**", self.handle)

    def handle(self, route: Route) -> None:
        wanted = route.request.headers.get("range", "bytes=0-")
        start = int(wanted.removeprefix("bytes=").split("-")[0] or 0)
        self.first = self.first or route.request.url
        # Reads past the middle pass at once: the browser reads an Ogg file's last pages early (its
        # duration); the audio after the first bytes is what waits.
        if route.request.url != self.first or (self.total is not None and start > self.total // 2):
            route.continue_()
        elif start == 0:
            response = route.fetch(headers={**route.request.headers, "range": f"bytes=0-{FIRST_BYTES - 1}"})
            self.total = int(response.headers["content-range"].rsplit("/", 1)[1])
            route.fulfill(response=response)
        else:
            self.held.append(route)


def test_playback_resumes_at_the_same_position_with_a_new_url(open_context, listener) -> None:
    token, _ = listener("Expiring Listener")
    context = open_context(token)
    context.add_init_script(RECORD_TIMES)
    page = app_page(context, "/app/search?q=Midnigth")
    link = HeldLink(page)
    urls: list[dict] = []

    def seen(response: Response) -> None:
        if "/api/playback/stream" in response.url and response.status == 200:
            urls.append(response.json())

    page.on("response", seen)
    row = page.get_by_role("list", name="Tracks found").locator(f'[data-track-id="{demo.DEMO_TRACK_ID}"]')
    row.get_by_role("button", name=re.compile("^Play ")).click()
    page.wait_for_function("() => (document.querySelector('audio')?.currentTime ?? 0) > 1", timeout=20_000)
    assert len(urls) == 1
    first_url = urls[0]["url"]
    expires = datetime.fromisoformat(urls[0]["expires_at"].replace("Z", "+00:00")).timestamp()
    # Playback runs dry on the held link before the URL expires, and waits.
    page.wait_for_function("() => document.querySelector('audio').readyState < 3", timeout=20_000)
    stalled_at = float(page.evaluate("() => document.querySelector('audio').currentTime"))
    assert time.time() < expires, "the URL expired before the test could see playback wait on it"
    assert link.held, "the browser never asked for the audio after the first bytes"

    until_seen(page, lambda: len(urls) >= 2, "the player to ask for a new URL once the first expired", 30)
    assert time.time() >= expires
    assert urls[1]["url"] != first_url
    # The first URL is really dead: the origin refuses it now.
    assert page.request.get(first_url, headers={"range": "bytes=65536-"}).status == 403
    page.wait_for_function(
        "at => { const a = document.querySelector('audio'); return !a.paused && a.currentTime > at + 1; }",
        arg=stalled_at,
        timeout=30_000,
    )
    times = page.evaluate("() => window.__times")
    resumed = [t for src, t, ready in times if src == urls[1]["url"] and ready >= 2]
    assert resumed and min(resumed) >= stalled_at - 0.5, (stalled_at, resumed[:5])
