"""An admin bans a listener from the admin screen: the listener's next action signs them out."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Dialog, expect

from tests.web.conftest import app_page


def test_a_ban_sends_the_listener_to_sign_in_with_a_message(
    open_context, listener, admin_token: str, screens: Path
) -> None:
    name = f"Banned {uuid.uuid4().hex[:6]}"
    token, user_id = listener(name)
    victim = app_page(open_context(token), "/app/search")
    expect(victim.get_by_role("navigation", name="Main")).to_contain_text(name)

    admin = app_page(open_context(admin_token), "/app/admin")
    admin.get_by_placeholder("Email or name").fill(name)
    admin.get_by_role("button", name="Find").click()
    row = admin.get_by_role("table", name="Users").get_by_role("row").filter(has_text=user_id)
    expect(row).to_have_count(1)

    def give_reason(dialog: Dialog) -> None:
        dialog.accept("terms of service")

    admin.once("dialog", give_reason)
    row.get_by_role("button", name=f"Ban {name}").click()
    expect(admin.get_by_role("status")).to_contain_text(f"{name} banned")
    expect(row).to_contain_text("banned: terms of service")
    admin.screenshot(path=screens / "admin.png", full_page=True)

    victim.get_by_role("link", name="Your library").click()
    expect(victim.get_by_role("form", name="Sign in")).to_be_visible()
    expect(victim.get_by_role("status")).to_contain_text("Signed out")
    victim.screenshot(path=screens / "banned.png")
