"""A stream played in the browser counts once: at the threshold, in playback and in the catalog."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from devdata import demo
from meshkit import ids
from tests.support import until
from tests.web.conftest import AUDIO_SECONDS, app_page, until_seen

# The player is driven fast: the threshold (half of a 30 s track) comes within seconds.
PLAYBACK_RATE = 4


def test_a_track_played_past_the_threshold_counts_exactly_once(
    open_context, listener, database_engine: sa.Engine
) -> None:
    token, user_id = listener("Counted Listener")
    page = app_page(open_context(token), "/app/search?q=Midnigth")
    found = page.get_by_role("list", name="Tracks found")
    row = found.locator(f'[data-track-id="{demo.DEMO_TRACK_ID}"]')
    reports = []
    page.on("response", lambda r: r.url.endswith("/api/playback/events") and reports.append(r.status))
    row.get_by_role("button", name=re.compile("^Play ")).click()
    page.wait_for_function("() => (document.querySelector('audio')?.currentTime ?? 0) > 0.5")
    expect(page.get_by_test_id("now-playing")).to_have_attribute("data-track-id", demo.DEMO_TRACK_ID)
    page.evaluate(f"() => {{ document.querySelector('audio').playbackRate = {PLAYBACK_RATE}; }}")
    played_ms = int(AUDIO_SECONDS / PLAYBACK_RATE * 1000)
    page.wait_for_function("() => document.querySelector('audio').ended", timeout=played_ms + 20_000)
    # Every event the page recorded (start, progress, complete) was taken by the edge.
    until_seen(page, lambda: len(reports) >= 4, "the page's event reports", 20)
    assert set(reports) == {200}, reports

    def rows(sql: str, **params: object) -> list[sa.Row]:
        with database_engine.connect() as db:
            return list(db.execute(sa.text(sql), params).all())

    mine = "SELECT id, track_id FROM playback.counted_streams WHERE user_id = :u"
    until(lambda: rows(mine, u=ids.decode(user_id)), "playback to count the stream", 60)
    streams = rows(mine, u=ids.decode(user_id))
    assert [ids.encode(s.track_id) for s in streams] == [demo.DEMO_TRACK_ID]
    applied = "SELECT stream_id FROM catalog.applied_stream_events WHERE stream_id = :s"
    until(lambda: len(rows(applied, s=streams[0].id)) == 1, "the catalog to count it", 60)
