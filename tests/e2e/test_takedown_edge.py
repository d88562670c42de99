"""Content takedown through Envoy: an artist withdraws their track, every surface shows it, and a
restore brings each back; other artists and listeners are refused and change nothing.

Library and playback cache catalog answers; catalog announces a takedown to them (Redis
pub/sub), so each effect below is awaited for a few seconds at most, far below those caches' TTLs.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from meshctl.mesh import Mesh
from sdk import offline_format
from tests.e2e.clients import bearer, bearer_metadata, call_rpc, grpc_channel_from
from tests.e2e.walk import ingest_messages, wav_bytes
from tests.support import until

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]
# Well under the caches' TTLs (library 60 s, playback 30 s): only the announcement explains a pass.
PROMPT_S = 5.0
DEVICE = "takedown-phone"


class User:
    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http = http
        self.token = token
        self.id = str(self.call("GET", "/v1/me").json()["id"])

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=bearer(self.token), **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        reply = self.call(method, path, **kwargs)
        assert reply.status_code == 200, f"{method} {path}: {reply.status_code} {reply.text}"
        return dict(reply.json())


def _refusal(reply: httpx.Response) -> tuple[int, str]:
    """A 4xx in Spotify's error shape: its status and message."""
    error = reply.json()["error"]
    assert error["status"] == reply.status_code
    return reply.status_code, str(error["message"])


def test_a_takedown_reaches_every_surface_and_a_restore_brings_it_back(
    running_mesh: Mesh,
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    admin_token: str,
) -> None:
    http = envoy_client()
    admin = User(http, admin_token)
    word = f"tkd{secrets.token_hex(4)}"

    # An artist with a managing account, an album and a track with audio.
    artist = admin.ok("POST", "/api/catalog/artists", json={"name": f"Takedown Artist {word}"})["id"]
    other_artist = admin.ok("POST", "/api/catalog/artists", json={"name": f"Other Artist {word}"})["id"]
    album = admin.ok(
        "POST",
        "/api/catalog/albums",
        json={"name": f"Album {word}", "album_type": "single", "artist_ids": [artist]},
    )["id"]
    track = admin.ok(
        "POST", "/api/catalog/tracks", json={"album_id": album, "name": f"Song {word}", "track_number": 1}
    )["id"]
    owner = User(http, new_account("Takedown Owner")[2])
    stranger_artist = User(http, new_account("Other Artist")[2])
    listener = User(http, new_account("Takedown Listener")[2])
    for who, managed in ((owner, artist), (stranger_artist, other_artist)):
        admin.ok(
            "PUT",
            f"/api/admin/users/{who.id}/roles",
            json={"roles": ["ROLE_USER", "ROLE_ARTIST"], "artist_ids": [managed]},
        )
    with grpc_channel_from(running_mesh.grpc_target) as channel:
        job = call_rpc(
            channel,
            "/spotify.catalog.v1.CatalogService/IngestTrackAudio",
            ingest_messages(track, wav_bytes()),
            bearer_metadata(owner.token),
            timeout=30,
        ).id
    until(
        lambda: owner.ok("GET", f"/api/catalog/ingest-jobs/{job}")["status"] == "STATUS_SUCCEEDED",
        "the ingest job",
        within=60,
        interval=0.2,
    )

    # A premium listener plays it, has it in a playlist, and has it offline.
    premium = User(http, new_account("Takedown Premium")[2])
    grant_premium(premium.token)
    key = offline_format.public_bytes(X25519PrivateKey.generate().public_key())
    premium.ok(
        "POST",
        "/api/playback/offline/devices",
        json={"device_id": DEVICE, "public_key": base64.b64encode(key).decode()},
    )
    playlist = premium.ok("POST", "/v1/me/playlists", json={"name": f"Mix {word}"})["id"]
    premium.ok("POST", f"/v1/playlists/{playlist}/items", json={"uris": [f"spotify:track:{track}"]})

    def stream() -> httpx.Response:
        return premium.call("GET", "/api/playback/stream", params={"track_id": track})

    def download() -> httpx.Response:
        body = {"device_id": DEVICE, "track_id": track, "quality": "low", "request_id": str(uuid.uuid4())}
        return premium.call("POST", "/api/playback/offline/downloads", json=body)

    license_id = download().json()["license"]["license_id"]

    def renew() -> httpx.Response:
        body = {"device_id": DEVICE, "request_id": str(uuid.uuid4())}
        return premium.call("POST", f"/api/playback/offline/licenses/{license_id}:renew", json=body)

    def playlist_item() -> dict[str, Any]:
        items = premium.ok("GET", f"/v1/playlists/{playlist}/items")["items"]
        assert [item["track"]["id"] for item in items] == [track]  # the entry stays, always
        return dict(items[0]["track"])

    def searched() -> bool:
        found = listener.ok("GET", "/v1/search", params={"q": word, "type": "track"})["tracks"]["items"]
        return track in {t["id"] for t in found}

    assert stream().status_code == 200 and renew().status_code == 200 and searched()
    assert playlist_item().get("is_playable") is not False  # cached by library from here on

    takedown = f"/api/catalog/tracks/{track}/takedown"
    down = owner.ok("PUT", takedown, json={"reason": "remastered version replaces it"})
    assert (down["uri"], down["reason"], down["taken_down_by"]) == (
        f"spotify:track:{track}",
        "remastered version replaces it",
        owner.id,
    )
    try:
        assert listener.call("GET", f"/v1/tracks/{track}").status_code == 404
        assert listener.ok("GET", f"/v1/albums/{album}/tracks")["items"] == []
        assert not searched()
        unplayable = until(
            lambda: (t := playlist_item()).get("is_playable") is False and t,
            "the playlist entry unplayable",
            PROMPT_S,
        )
        assert unplayable["restrictions"] == {"reason": "takedown"} and unplayable["name"] == f"Song {word}"
        refused = until(lambda: (r := stream()).status_code != 200 and r, "the stream refused", PROMPT_S)
        assert _refusal(refused) == (409, f"track {track} is not available: it was taken down")
        code, message = _refusal(download())
        assert code == 409 and "taken down" in message
        code, message = _refusal(renew())
        assert code == 409 and "taken down" in message
        readd = premium.call(
            "POST", f"/v1/playlists/{playlist}/items", json={"uris": [f"spotify:track:{track}"]}
        )
        assert _refusal(readd)[0] == 400

        # Admins see it in the list of what is down; the artist who took it down does not list.
        listed = admin.ok("GET", "/api/catalog/takedowns", params={"collection": "tracks", "limit": 50})
        mine = [t for t in listed["takedowns"] if t["uri"] == f"spotify:track:{track}"]
        assert [(t["reason"], t["taken_down_by"], t.get("by_admin", False)) for t in mine] == [
            ("remastered version replaces it", owner.id, False)
        ]
        assert _refusal(owner.call("GET", "/api/catalog/takedowns"))[0] == 403

        # Nobody else may lift or change it, and their attempts change nothing.
        for who in (stranger_artist, listener):
            assert _refusal(who.call("DELETE", takedown, params={"reason": "mine now"}))[0] == 403
            assert _refusal(who.call("PUT", takedown, json={"reason": "mine now"}))[0] == 403
        assert listener.call("GET", f"/v1/tracks/{track}").status_code == 404
    finally:
        restored = owner.ok("DELETE", takedown, params={"reason": "the remaster was withdrawn"})
    assert restored == {"uri": f"spotify:track:{track}", "was_taken_down": True}

    assert listener.ok("GET", f"/v1/tracks/{track}")["id"] == track
    assert searched()
    until(lambda: playlist_item().get("is_playable") is not False, "the playlist entry playable", PROMPT_S)
    until(lambda: stream().status_code == 200, "the stream back", PROMPT_S)
    assert download().status_code == 200 and renew().status_code == 200
    owner.ok("DELETE", takedown, params={"reason": "again"})  # restoring twice is fine

    # Audited: both changes and the refused attempts of the other artist, with their reasons.
    entries = [
        (e["action"], e["actor_id"], e["success"])
        for who in (owner, stranger_artist)
        for e in admin.ok("GET", "/api/admin/audit-logs", params={"actor_id": who.id, "limit": 100})["events"]
        if e["resource_id"] == track
    ]
    assert sorted(set(entries)) == sorted(
        {
            ("catalog.take_down", owner.id, True),
            ("catalog.restore", owner.id, True),
            ("catalog.take_down", stranger_artist.id, False),
            ("catalog.restore", stranger_artist.id, False),
        }
    )
