"""Playlists in the browser: create, add from search, reorder by dragging, collaborate."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.conftest import app_page


def track_ids(page: Page) -> list[str]:
    rows = page.get_by_role("list", name=re.compile("^Tracks of")).locator(".track")
    return [str(row.get_attribute("data-track-id")) for row in rows.all()]


def add_from_search(
    page: Page, query: str, playlist: str, count: int, skip: tuple[str, ...] = ()
) -> list[str]:
    """Add the first `count` tracks that `query` finds (but those in `skip`) to `playlist`;
    returns their ids."""
    page.get_by_role("link", name="Search").click()
    page.get_by_role("searchbox").fill(query)
    found = page.get_by_role("list", name="Tracks found")
    expect(found).to_be_visible()
    added: list[str] = []
    for row in found.get_by_role("listitem").all():
        track_id = str(row.get_attribute("data-track-id"))
        if track_id in skip or track_id in added:
            continue
        name = row.locator(".name").inner_text().strip()
        row.get_by_role("button", name=f"Add {name} to a playlist").click()
        row.get_by_role("list", name="Playlists").get_by_role("button", name=playlist).click()
        expect(page.get_by_role("status")).to_contain_text(f"Added {name} to {playlist}")
        added.append(track_id)
        if len(added) == count:
            return added
    raise AssertionError(f"{query!r} found fewer than {count} new tracks")


def test_create_add_reorder_by_drag_and_collaborate(open_context, listener, screens: Path) -> None:
    owner_token, _ = listener("Playlist Owner")
    guest_token, guest_id = listener("Playlist Guest")
    page = app_page(open_context(owner_token), "/app/playlists")
    page.get_by_placeholder("New playlist name").fill("Road Trip")
    page.get_by_role("button", name="Create playlist").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Road Trip")
    playlist_url = page.url

    added = add_from_search(page, "The Loud Valleys", "Road Trip", 3)
    assert len(set(added)) == 3, added
    page.goto(playlist_url)
    expect(page.get_by_role("list", name="Tracks of Road Trip").get_by_role("listitem")).to_have_count(3)
    assert track_ids(page) == added

    # Drag the third track onto the first: it becomes the first.
    handles = page.locator(".handle")
    handles.nth(2).drag_to(handles.nth(0))
    expect(page.get_by_role("list", name="Tracks of Road Trip").locator(".track").first).to_have_attribute(
        "data-track-id", added[2]
    )
    page.reload()
    expect(page.get_by_role("list", name="Tracks of Road Trip").get_by_role("listitem")).to_have_count(3)
    assert track_ids(page) == [added[2], added[0], added[1]]

    # Collaborative, with the guest invited: the guest adds a track from search.
    page.get_by_role("button", name="Make collaborative").click()
    page.get_by_placeholder("Collaborator's user id").fill(guest_id)
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_contain_text("Invited")
    page.screenshot(path=screens / "playlist.png")

    guest = app_page(open_context(guest_token), "/app/search")
    guest_added = add_from_search(guest, "Midnight", "Road Trip", 1, skip=tuple(added))
    page.reload()
    expect(page.get_by_role("list", name="Tracks of Road Trip").get_by_role("listitem")).to_have_count(4)
    assert track_ids(page) == [added[2], added[0], added[1], guest_added[0]]
