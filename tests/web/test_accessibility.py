"""Every main screen: no serious or critical axe-core violation, and a screenshot of each.

axe-core comes from the npm registry (web/package.json) and runs inside the page; the test's
browser context lets the page take the injected script despite the app's content policy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devdata import demo
from meshkit.config import PROJECT_ROOT
from tests.web.conftest import app_page

AXE = PROJECT_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }));
}"""
PHONE = {"width": 390, "height": 844}


def serious_violations(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return [v for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]


def check(page: Page, screens: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    page.screenshot(path=screens / f"{name}.png", full_page=True)
    assert serious_violations(page) == [], name


@pytest.fixture
def signed_in(open_context, listener):
    token, _ = listener("Accessible Listener")
    return open_context(token, bypass_csp=True)


def test_every_main_screen_passes_axe(signed_in, open_context, admin_token: str, screens: Path) -> None:
    signed_out = app_page(open_context(bypass_csp=True))
    expect(signed_out.get_by_role("form", name="Sign in")).to_be_visible()
    check(signed_out, screens, "a11y-sign-in")

    page = app_page(signed_in, "/app/search?q=Midnight")
    expect(page.get_by_role("list", name="Tracks found")).to_be_visible()
    check(page, screens, "a11y-search")

    page.goto(f"/app/artist/{demo.DEMO_ARTIST_ID}")
    expect(page.get_by_role("heading", name="Top tracks")).to_be_visible()
    check(page, screens, "a11y-artist")

    # The demo track's album: its first track has audio on this mesh.
    page.get_by_role("list", name="Albums").get_by_role("link", name="Midnight Static").click()
    expect(page).to_have_url(re.compile("/app/album/"))
    page.get_by_role("button", name="Save to library").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    page.get_by_role("list", name=re.compile("^Tracks of")).get_by_role(
        "button", name=re.compile("^Play ")
    ).first.click()
    page.wait_for_function("() => (document.querySelector('audio')?.currentTime ?? 0) > 0.5")
    check(page, screens, "a11y-album-playing")

    page.get_by_role("link", name="Your library").click()
    expect(page.get_by_role("list", name="Saved albums")).to_be_visible()
    check(page, screens, "a11y-library")

    page.get_by_role("link", name="Playlists").click()
    page.get_by_placeholder("New playlist name").fill("Accessible Mix")
    page.get_by_role("button", name="Create playlist").click()
    expect(page.get_by_role("heading", name="Accessible Mix")).to_be_visible()
    check(page, screens, "a11y-playlist")
    page.get_by_role("link", name="Playlists").click()
    expect(page.get_by_role("list", name="Your playlists")).to_be_visible()
    check(page, screens, "a11y-playlists")

    page.get_by_role("link", name="Discover Weekly").click()
    expect(page.get_by_role("heading", name="Discover Weekly")).to_be_visible()
    check(page, screens, "a11y-discover-weekly")

    page.goto(f"/app/radio?track={demo.DEMO_TRACK_ID}")
    expect(page.get_by_role("button", name="Play the station")).to_be_visible()
    check(page, screens, "a11y-radio")

    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    check(page, screens, "a11y-account")

    page.set_viewport_size(PHONE)
    page.goto("/app/search?q=Midnight")
    expect(page.get_by_role("list", name="Tracks found")).to_be_visible()
    check(page, screens, "a11y-phone-search")

    admin = app_page(open_context(admin_token, bypass_csp=True), "/app/admin")
    expect(admin.get_by_role("table", name="Users")).to_be_visible()
    check(admin, screens, "a11y-admin")
