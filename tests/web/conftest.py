"""The web mesh: a whole mesh of the browser tests' own (`make test-web`), whose signed media URLs
expire within a track, and Debian's chromium driven by Playwright.

Signing in through the page costs one of the five logins an address gets per 15 minutes, and a
local browser always comes from 127.0.0.1: tests sign in through the page only where signing in
is what they test; elsewhere the browser gets the session cookie of a login made from an address
of the test's own, as the edge itself would set it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from meshctl import mesh
from meshctl.browser import CHROMIUM_ARGS, chromium
from meshctl.mesh import Mesh
from tests.conftest import load_demo
from tests.support import until

# The demo tracks with audio on this mesh are this long (the default suite's are 6 s): long enough
# to pass the counting threshold at a driven playback rate, and to outlive a URL.
AUDIO_SECONDS = 30.0
AUDIO_TRACKS = 4
# Shorter than a demo track: a URL handed out at the start expires before the track ends.
URL_TTL_S = 8
# What the edge names its session cookie (auth_svc.credentials).
SESSION_COOKIE = "session"


@pytest.fixture(scope="session")
def demo_database_url(database_url: str, run_dir: Path, envoy_port: int) -> str:
    """The demo data, with AUDIO_SECONDS of real audio on each album's first track."""
    return load_demo(database_url, run_dir, envoy_port, tracks=AUDIO_TRACKS, seconds=AUDIO_SECONDS, workers=2)


@pytest.fixture(scope="session")
def mesh_env() -> dict[str, str]:
    return {"PLAYBACK_STREAM_URL_TTL_S": str(URL_TTL_S)}


@pytest.fixture(scope="session")
def playwright_driver(running_mesh: Mesh) -> Iterator[Playwright]:
    # After the mesh: Playwright's sync API runs an event loop on this thread for as long as it
    # lives, and the demo data's loader (asyncio.run) cannot start under it. The mesh's own batch
    # build first (as `make up` runs it): radio, related artists and Discover Weekly need a model.
    mesh.build_recommendations(running_mesh)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    executable = chromium()
    assert executable, "Debian's chromium is not installed: `make install` installs it where apt-get exists"
    browser = playwright_driver.chromium.launch(
        executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each main screen's screenshot goes (.build/test-web/screens under make test-web)."""
    folder = tmp_path_factory.getbasetemp() / "screens"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def open_context(browser: Browser, running_mesh: Mesh) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (a fresh profile each) on the mesh's edge, optionally signed in with a
    session token; all closed after the test."""
    contexts: list[BrowserContext] = []

    def make(token: str | None = None, **options: object) -> BrowserContext:
        context = browser.new_context(base_url=running_mesh.envoy_url, **options)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        if token is not None:
            context.add_cookies(
                [{"name": SESSION_COOKIE, "value": token, "url": running_mesh.envoy_url, "httpOnly": True}]
            )
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def app_page(context: BrowserContext, path: str = "/app/") -> Page:
    page = context.new_page()
    page.goto(path)
    return page


@pytest.fixture
def listener(
    new_account: Callable[..., tuple[str, str, str]], envoy_client: Callable[..., httpx.Client]
) -> Callable[[str], tuple[str, str]]:
    """A new account (registered from an address of the test's own): (session token, user id)."""

    def make(display_name: str) -> tuple[str, str]:
        _, _, token = new_account(display_name)
        me = envoy_client().get("/v1/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return token, str(me.json()["id"])

    return make


def until_seen(page: Page, predicate: Callable[[], object], what: str, within: float) -> None:
    """Wait for something the page's events tell (responses, routes): Playwright's sync API hands
    events over only while the test is inside one of its calls, so the wait is one of them."""
    until(predicate, what, within, interval=0.1, sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))
