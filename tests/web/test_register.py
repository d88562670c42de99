"""A newcomer in the browser: create an account, land signed in, sign out."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from tests.web.conftest import SESSION_COOKIE, app_page


def test_register_sign_out_and_the_session_is_gone(open_context, running_mesh) -> None:
    context = open_context()
    page = app_page(context)
    page.get_by_role("button", name="Create an account").click()
    form = page.get_by_role("form", name="Create an account")
    form.get_by_label("Email").fill(f"web-{uuid.uuid4().hex[:10]}@example.com")
    form.get_by_label("Password").fill("a-long-enough-password")
    form.get_by_label("Display name").fill("Web Newcomer")
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Web Newcomer · free")
    (session,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"], session

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("form", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You signed out.")
    # The edge closed the session: its token no longer opens anything.
    me = httpx.get(f"{running_mesh.envoy_url}/v1/me", headers={"authorization": f"Bearer {session['value']}"})
    assert me.status_code == 401, me.text
    page.reload()
    expect(page.get_by_role("form", name="Sign in")).to_be_visible()
