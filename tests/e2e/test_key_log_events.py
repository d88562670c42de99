"""The seed's key log events, read back from the log lines the services of the test mesh wrote
for requests sent through Envoy with a request id of the test's own: each event once, as one
JSON object with its fields, the service, its version and the request's id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devdata import demo
from meshctl.mesh import Mesh
from meshkit.logs import app_version
from tests.e2e.clients import bearer
from tests.support import until

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]


def lines(mesh: Mesh, service: str) -> list[dict[str, Any]]:
    """Every JSON line any replica of `service` has logged so far (their stdout, as the launcher
    keeps it)."""
    found = []
    for replica in mesh.layout.replicas(service):
        log = mesh.layout.run_dir / "logs" / f"{replica.name}.log"
        for raw in log.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    found.append(json.loads(raw))
                except ValueError:
                    continue
    return found


def events(mesh: Mesh, service: str, message: str, **match: object) -> list[dict[str, Any]]:
    return [
        line
        for line in lines(mesh, service)
        if line.get("message") == message and all(line.get(k) == v for k, v in match.items())
    ]


def the_one(mesh: Mesh, service: str, message: str, **match: object) -> dict[str, Any]:
    """The single line of `message` matching `match`, waiting for the service to write it."""
    found = until(lambda: events(mesh, service, message, **match), f"{service}: {message!r}", 30)
    assert len(found) == 1, found
    line = found[0]
    assert line["service"] == service and line["version"] == app_version()
    return line


def rid() -> dict[str, str]:
    return {"x-request-id": f"logs-{uuid.uuid4().hex}"}


def test_logins_and_failed_logins(running_mesh: Mesh, envoy_client: Client) -> None:
    http = envoy_client()
    ok, bad = rid(), rid()
    signed_in = http.post(
        "/api/auth/login", json={"email": "free@example.com", "password": "free-password"}, headers=ok
    )
    assert signed_in.status_code == 200, signed_in.text
    refused = http.post(
        "/api/auth/login", json={"email": "free@example.com", "password": "not-it"}, headers=bad
    )
    assert refused.status_code == 401

    login = the_one(running_mesh, "auth_svc", "user logged in", request_id=ok["x-request-id"])
    assert login["level"] == "INFO" and login["action"] == "login"
    assert login["user_id"] == signed_in.json()["user"]["id"] and login["ip"].startswith("127.")
    failed = the_one(running_mesh, "auth_svc", "login attempt failed", request_id=bad["x-request-id"])
    assert failed["level"] == "WARNING" and failed["action"] == "login_failed"
    assert (failed["email"], failed["reason"]) == ("free@example.com", "invalid_password")
    assert failed["ip"] == login["ip"]


def test_playback_started_and_the_stream_counted(
    running_mesh: Mesh, envoy_client: Client, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    _, _, token = new_account("Log Listener")
    http = envoy_client()
    me = http.get("/v1/me", headers=bearer(token)).json()["id"]
    track = http.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}", headers=bearer(token)).json()
    key = f"logs-{uuid.uuid4().hex}"
    common = {"idempotency_key": key, "track_id": demo.DEMO_TRACK_ID, "device_type": "web"}
    sent = rid()
    reply = http.post(
        "/api/playback/events",
        json={
            "events": [
                {**common, "event": "start"},
                {
                    **common,
                    "event": "progress",
                    "position_ms": min(31_000, track["duration_ms"]),
                    "track_duration_ms": track["duration_ms"],
                },
            ]
        },
        headers={**bearer(token), **sent},
    )
    assert reply.status_code == 200, reply.text

    started = the_one(running_mesh, "playback_svc", "playback started", request_id=sent["x-request-id"])
    assert (started["user_id"], started["track_id"], started["event"]) == (
        me,
        demo.DEMO_TRACK_ID,
        "stream_started",
    )
    # Counted later by the stream counter, outside any request: found by the listener's id.
    counted = the_one(running_mesh, "playback_svc", "stream counted for royalties", user_id=me)
    assert (counted["track_id"], counted["event"]) == (demo.DEMO_TRACK_ID, "stream_counted")
    assert counted["position"] == min(31_000, track["duration_ms"]) // 1000


def test_a_failed_playlist_update(running_mesh: Mesh, envoy_client: Client, free_token: str) -> None:
    sent = rid()
    # The demo listener's playlist: another user may not change it.
    refused = envoy_client().post(
        f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items",
        json={"uris": [f"spotify:track:{demo.DEMO_TRACK_ID}"]},
        headers={**bearer(free_token), **sent},
    )
    assert refused.status_code == 403, refused.text
    failed = the_one(
        running_mesh, "library_svc", "failed to update playlist", request_id=sent["x-request-id"]
    )
    assert failed["level"] == "WARNING" and failed["operation"] == "playlist_update"
    assert (failed["playlist_id"], failed["change"]) == (demo.DEMO_PLAYLIST_ID, "add_items")
    assert failed["user_id"] and failed["error"]
