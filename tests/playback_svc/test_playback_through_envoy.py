"""playback_svc as a web client sees it: JSON through the test mesh's Envoy, signed in with a
bearer token from /api/auth/login, against the real catalog, auth, Kafka and the mesh's own
stream counter (started inside its playback_svc)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids
from meshkit.db import normalize_url
from tests.playback_svc.helpers import poll

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def listener(running_mesh: Mesh, new_account: Callable[..., tuple[str, str, str]]) -> httpx.Client:
    """A fresh premium-less account: its history and player state are this module's alone."""
    _email, _password, token = new_account("Playback E2E")
    with httpx.Client(
        base_url=running_mesh.envoy_url, timeout=10, headers={"authorization": f"Bearer {token}"}
    ) as client:
        yield client


def _session(key: str, track: str = demo.DEMO_TRACK_ID) -> list[dict]:
    return [
        {"idempotency_key": key, "track_id": track, "event": "start", "device_type": "computer"},
        {
            "idempotency_key": key,
            "track_id": f"spotify:track:{track}",
            "event": "progress",
            "position_ms": 31_000,
            "track_duration_ms": 150_000,
            "device_type": "computer",
            "client_timestamp": "2024-05-01T12:00:31Z",
        },
    ]


def test_reported_events_become_a_counted_stream_in_recently_played(listener: httpx.Client) -> None:
    key = f"e2e_{demo.DEMO_TRACK_ID}_{uuid.uuid4().hex}"
    bogus = {"idempotency_key": key, "track_id": "nope", "event": "progress"}
    reply = listener.post("/api/playback/events", json={"events": [*_session(key), bogus]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 2
    assert [r["index"] for r in reply.json()["rejected"]] == [2]

    def history(total: int) -> Callable[[], dict]:
        def check() -> dict:
            page = listener.get("/v1/me/player/recently-played", params={"limit": 5}).json()
            return page if page.get("total") == total else {}

        return check

    page = poll(history(1), within=30, interval=0.25)
    assert set(page) >= {"href", "items", "limit", "next", "cursors", "total"}
    (item,) = page["items"]
    assert item["track"]["id"] == demo.DEMO_TRACK_ID and item["track"]["name"] == "Midnight"
    assert item["track"]["artists"][0]["name"] == "The Loud Valleys"
    assert item["played_at"].endswith("Z")
    # The same session again, then a new one as a barrier: only the new one adds to the history.
    second = ids_of_demo_album_tracks()[1]
    listener.post("/api/playback/events", json={"events": _session(key)})
    listener.post("/api/playback/events", json={"events": _session(f"e2e-{uuid.uuid4().hex}", second)})
    page = poll(history(2), within=30, interval=0.25)
    assert [i["track"]["id"] for i in page["items"]] == [second, demo.DEMO_TRACK_ID]


def test_the_royalty_row_carries_the_accounts_country_not_a_header_the_client_sent(
    running_mesh: Mesh, envoy_client: Callable[..., httpx.Client], login: Callable[[str, str], str]
) -> None:
    email, password = f"se-{uuid.uuid4().hex[:12]}@example.com", "pw-" + uuid.uuid4().hex[:12]
    registered = envoy_client().post(
        "/api/auth/register",
        json={"email": email, "password": password, "display_name": "Stockholm", "country": "se"},
    )
    assert registered.status_code == 200, registered.text
    assert registered.json()["user"]["country"] == "SE"
    user_id = registered.json()["user"]["id"]
    token = login(email, password)
    key = f"{user_id}_{demo.DEMO_TRACK_ID}_{uuid.uuid4().hex}"
    spoofed = {"authorization": f"Bearer {token}", "x-user-country": "US"}
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10, headers=spoofed) as client:
        reply = client.post("/api/playback/events", json={"events": _session(key)})
    assert reply.status_code == 200 and reply.json()["accepted"] == 2, reply.text

    engine = sqlalchemy.create_engine(normalize_url(running_mesh.database_url))
    try:

        def countries() -> list[str | None]:
            with engine.connect() as conn:
                return list(
                    conn.scalars(
                        sqlalchemy.text(
                            "SELECT country FROM playback.royalty_attributions WHERE user_id = :u"
                        ),
                        {"u": ids.decode(user_id)},
                    )
                )

        assert set(poll(countries, within=30, interval=0.25)) == {"SE"}
    finally:
        engine.dispose()


def test_the_player_is_shared_json_in_spotify_shapes(listener: httpx.Client) -> None:
    second = ids_of_demo_album_tracks()[1]
    play = listener.put(
        "/v1/me/player/play",
        params={"device_id": "web-e2e"},
        json={
            "uris": [f"spotify:track:{demo.DEMO_TRACK_ID}", f"spotify:track:{second}"],
            "position_ms": 1_000,
        },
    )
    assert play.status_code == 200, play.text
    state = listener.get("/v1/me/player").json()
    assert state["item"]["id"] == demo.DEMO_TRACK_ID and state["item"]["type"] == "track"
    assert state["is_playing"] is True and state["progress_ms"] >= 1_000
    assert state["device"]["id"] == "web-e2e" and state["repeat_state"] == "off"
    assert listener.put("/v1/me/player/pause").status_code == 200
    assert listener.post("/v1/me/player/next").status_code == 200
    assert listener.put("/v1/me/player/seek", params={"position_ms": 5_000}).status_code == 200
    current = listener.get("/v1/me/player/currently-playing").json()
    assert current["item"]["id"] == second
    assert current["is_playing"] is False and current["progress_ms"] == 5_000
    bad = listener.put("/v1/me/player/repeat", params={"state": "sometimes"})
    assert bad.status_code == 400


def ids_of_demo_album_tracks() -> list[str]:
    return [ids.encode(demo.demo_uuid(f"track:The Loud Valleys:0:{n}")) for n in range(5)]


def test_royalty_reports_are_for_admins(listener: httpx.Client, running_mesh: Mesh, admin_token: str) -> None:
    params = {"period_start": "2024-01-01", "period_end": "2024-12-31"}
    assert listener.get("/api/playback/royalties", params=params).status_code == 403
    admin = httpx.get(
        f"{running_mesh.envoy_url}/api/playback/royalties",
        params=params,
        headers={"authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert admin.status_code == 200, admin.text
    assert admin.json()["period_start"] == "2024-01-01"


def test_stream_url_through_envoy_and_the_media_origin(listener: httpx.Client) -> None:
    reply = listener.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID, "quality": "high"})
    assert reply.status_code == 200, reply.text
    stream = reply.json()
    assert stream["quality_kbps"] == 160  # a free account asking for high
    media = listener.get(stream["url"], headers={"Range": "bytes=0-65535"})
    assert media.status_code == 206 and media.content.startswith(b"OggS")
