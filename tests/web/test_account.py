"""A listener's own account in the browser: a copy of their data, downloaded from the link the page
shows, then the account's deletion, which signs them out for good."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from tests.web.conftest import app_page


def test_a_listener_downloads_their_data_then_deletes_the_account(
    open_context, new_account, envoy_client, screens: Path
) -> None:
    email, password, token = new_account("Web Leaver")
    page = app_page(open_context(token, accept_downloads=True), "/app/search")
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()

    page.get_by_role("button", name="Request your data").click()
    link = page.get_by_role("link", name=re.compile("^Download your data"))
    expect(link).to_be_visible(timeout=60_000)
    with page.expect_download() as downloading:
        link.click()
    with zipfile.ZipFile(downloading.value.path()) as archive:
        assert "README.md" in archive.namelist()
        (account,) = json.loads(archive.read("auth/account.json"))
    assert account["email"] == email
    page.screenshot(path=screens / "account.png", full_page=True)

    # A wrong password is refused and changes nothing; the right one ends everything.
    form = page.get_by_role("form", name="Delete your account")
    form.get_by_label("Password").fill("not-the-password")
    form.get_by_label("I understand this cannot be undone").check()
    form.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("status")).to_contain_text("Not allowed")
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("form", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Your account was deleted.")

    edge = envoy_client()  # an address of its own: sign-ins are limited per address
    assert edge.get("/v1/me", headers={"authorization": f"Bearer {token}"}).status_code == 401
    again = edge.post("/api/auth/login", json={"email": email, "password": password})
    assert again.status_code == 401, again.text
