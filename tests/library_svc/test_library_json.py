"""Library JSON through the test mesh's Envoy (grpc_json_transcoder behind ext_authz).

Every call carries `Authorization: Bearer <token>` of a fresh account of this module's own, so
the demo user's playlists and library stay as the demo has them (the one demo row touched, the
demo playlist's follower count, is put back in `finally`). A failed registration or login fails
the tests. Playlists are set up through the in-process library_svc, which shares the database
with the mesh's library_svc behind Envoy.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids

if TYPE_CHECKING:
    from tests.library_svc.conftest import LibraryHarness, User

pytestmark = pytest.mark.e2e

DISPLAY_NAME = "JSON Listener"


@pytest.fixture(scope="module")
def token(new_account: Callable[..., tuple[str, str, str]]) -> str:
    """A fresh account's bearer token."""
    return new_account(DISPLAY_NAME)[2]


@pytest.fixture(scope="module")
async def http(running_mesh: Mesh, token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=running_mesh.envoy_url, headers=headers, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
async def me(http: httpx.AsyncClient, lib: LibraryHarness) -> User:
    """The module's account, as the in-process library_svc's callers name it."""
    reply = await http.get("/v1/me")
    assert reply.status_code == 200, reply.text
    return lib.user(ids.decode(reply.json()["id"]))


def message(reply: httpx.Response) -> str:
    """The error message, from Spotify's error object (the only error shape Envoy may answer in)."""
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error"} and body["error"]["status"] == reply.status_code, body
    return str(body["error"]["message"])


async def test_public_playlist_as_json_with_tracks_from_the_catalog(
    http: httpx.AsyncClient, lib: LibraryHarness, me: User
) -> None:
    playlist = await lib.create(me, name="JSON public", public=True)
    await lib.add(me, playlist.id, lib.tracks[300:305])

    reply = await http.get(f"/v1/playlists/{playlist.id}", params={"market": "SE", "fields": "ignored"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["name"] == "JSON public"
    assert body["owner"]["id"] == me.key
    assert body["owner"]["display_name"] == DISPLAY_NAME
    assert body["type"] == "playlist"
    assert body["snapshot_id"] == playlist.snapshot_id[:8] + body["snapshot_id"][8:]
    first = body["items"]["items"][0]
    assert first["item"]["id"] == ids.encode(lib.tracks[300])
    assert first["item"]["album"]["name"] == "Fixture Tracks"
    assert first["item"]["artists"][0]["name"] == "Library Fixture Ensemble"
    assert first["added_by"]["id"] == me.key
    assert first["is_local"] is False

    page = (await http.get(f"/v1/playlists/{playlist.id}/items", params={"limit": 2, "offset": 2})).json()
    assert [i["item"]["id"] for i in page["items"]] == [ids.encode(t) for t in lib.tracks[302:304]]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    assert page["next"].endswith(f"/v1/playlists/{playlist.id}/items?offset=4&limit=2")
    assert (await http.get(f"/v1/playlists/{playlist.id}/items", params={"limit": 101})).status_code == 400


async def test_someone_elses_private_playlist_is_404(http: httpx.AsyncClient, lib: LibraryHarness) -> None:
    (owner,) = lib.users(1, with_profile=False)
    private = await lib.create(owner, public=False)
    for path in (f"/v1/playlists/{private.id}", f"/v1/playlists/{private.id}/items"):
        reply = await http.get(path)
        assert reply.status_code == 404, reply.text
        assert "playlist not found" in message(reply)
    assert (await http.get("/v1/playlists/not-a-playlist-id")).status_code == 400


async def test_writes_without_a_session_are_401_and_change_nothing(
    running_mesh: Mesh, lib: LibraryHarness
) -> None:
    async with httpx.AsyncClient(base_url=running_mesh.envoy_url, timeout=10) as anonymous:
        spoofed = {"x-user-id": demo.DEMO_USER_ID, "x-user-roles": "user"}  # stripped by Envoy
        created = await anonymous.post("/v1/me/playlists", json={"name": "nobody's"}, headers=spoofed)
        added = await anonymous.post(
            f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items",
            json={"uris": [ids.uri("track", lib.tracks[0])]},
            headers=spoofed,
        )
    assert (created.status_code, added.status_code) == (401, 401)
    assert lib.playlist_row(demo.DEMO_PLAYLIST_ID)["item_count"] == 10


async def test_json_write_round_trip(http: httpx.AsyncClient, me: User, lib: LibraryHarness) -> None:
    created = await http.post(
        "/v1/me/playlists", json={"name": "JSON round trip", "description": "via Envoy", "public": False}
    )
    assert created.status_code == 200, created.text
    playlist = created.json()
    pid = playlist["id"]
    assert (playlist["public"], playlist["collaborative"], playlist["owner"]["id"]) == (False, False, me.key)
    also_mine = await http.post(f"/v1/users/{me.key}/playlists", json={"name": "also mine"})
    assert also_mine.status_code == 200, also_mine.text
    for_someone = await http.post(f"/v1/users/{ids.encode(uuid.uuid4())}/playlists", json={"name": "x"})
    assert for_someone.status_code == 403, for_someone.text

    tracks = [ids.uri("track", t) for t in lib.tracks[400:406]]
    key = {"idempotency-key": str(uuid.uuid4())}
    first = await http.post(f"/v1/playlists/{pid}/items", json={"uris": tracks[:3]}, headers=key)
    again = await http.post(f"/v1/playlists/{pid}/items", json={"uris": tracks[:3]}, headers=key)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert lib.playlist_row(pid)["version"] == 2  # the retry changed nothing
    at_front = await http.post(f"/v1/playlists/{pid}/items", json={"uris": tracks[3:5], "position": 0})
    assert at_front.status_code == 200, at_front.text
    snapshot = at_front.json()["snapshot_id"]

    before = lib.rows(pid)
    bad = await http.post(f"/v1/playlists/{pid}/items", json={"uris": ["spotify:track:nope", tracks[5]]})
    assert bad.status_code == 400 and "spotify:track:nope" in message(bad)
    unknown = ids.uri("track", uuid.uuid4())
    missing = await http.post(f"/v1/playlists/{pid}/items", json={"uris": [unknown]})
    assert missing.status_code == 400 and unknown in message(missing)
    stale = await http.request(
        "DELETE",
        f"/v1/playlists/{pid}/items",
        json={"items": [{"uri": tracks[0]}], "snapshot_id": first.json()["snapshot_id"]},
    )
    assert stale.status_code == 409, stale.text
    assert lib.rows(pid) == before

    moved = await http.put(
        f"/v1/playlists/{pid}/items",
        json={"range_start": 0, "insert_before": 5, "range_length": 2, "snapshot_id": snapshot},
    )
    assert moved.status_code == 200, moved.text
    removed = await http.request(
        "DELETE",
        f"/v1/playlists/{pid}/items",
        json={"tracks": [{"uri": tracks[1]}], "snapshot_id": moved.json()["snapshot_id"]},
    )
    assert removed.status_code == 200, removed.text
    assert [r[1] for r in lib.rows(pid)] == [tracks[i].rsplit(":", 1)[1] for i in (0, 2, 3, 4)]

    details = await http.put(f"/v1/playlists/{pid}", json={"name": "Renamed", "public": True})
    assert details.status_code == 200 and details.json()["name"] == "Renamed"
    listed = (await http.get("/v1/me/playlists", params={"limit": 50})).json()
    assert pid in [p["id"] for p in listed["items"]]

    followers = lib.playlist_row(demo.DEMO_PLAYLIST_ID)["follower_count"]
    try:
        followed = await http.put(f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/followers", json={})
        assert followed.status_code == 200, followed.text
        assert lib.playlist_row(demo.DEMO_PLAYLIST_ID)["follower_count"] == followers + 1
    finally:
        unfollowed = await http.delete(f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/followers")
    assert unfollowed.status_code == 200, unfollowed.text
    assert lib.playlist_row(demo.DEMO_PLAYLIST_ID)["follower_count"] == followers


async def test_add_items_takes_every_body_spotify_documents(
    http: httpx.AsyncClient, lib: LibraryHarness
) -> None:
    """A bare JSON array, {"uris","position"}, or ?uris=&position= (which wins over the body)."""
    created = await http.post("/v1/me/playlists", json={"name": "Every add body", "public": False})
    assert created.status_code == 200, created.text
    pid = created.json()["id"]
    tracks = [ids.uri("track", t) for t in lib.tracks[410:417]]
    items = f"/v1/playlists/{pid}/items"

    bare = await http.post(items, json=tracks[0:2])
    assert bare.status_code == 200, bare.text
    wrapped = await http.post(items, json={"uris": [tracks[2]], "position": 0})
    assert wrapped.status_code == 200, wrapped.text
    queried = await http.post(items, params={"uris": ",".join(tracks[3:5]), "position": 1})
    assert queried.status_code == 200, queried.text
    query_wins = await http.post(items, params={"uris": tracks[5]}, json=[tracks[0]])
    assert query_wins.status_code == 200, query_wins.text
    null_position = await http.post(items, json={"uris": [tracks[6]], "position": None})
    assert null_position.status_code == 200, null_position.text
    order = [tracks[i].rsplit(":", 1)[1] for i in (2, 3, 4, 0, 1, 5, 6)]
    assert [r[1] for r in lib.rows(pid)] == order

    before = (lib.rows(pid), lib.playlist_row(pid)["version"])
    for body in ({"uris": tracks[0]}, [1, 2], {"uris": [tracks[0]], "colour": "red"}, "spotify:track:x", []):
        reply = await http.post(items, json=body)
        assert reply.status_code == 400, (body, reply.text)
        assert message(reply)
    fractional = await http.post(items, json={"uris": [tracks[0]], "position": 1.5})
    assert fractional.status_code == 400, fractional.text
    assert (lib.rows(pid), lib.playlist_row(pid)["version"]) == before


async def test_json_library_round_trip(http: httpx.AsyncClient, lib: LibraryHarness) -> None:
    saved, other = ids.uri("track", lib.tracks[500]), ids.uri("track", lib.tracks[501])
    assert (await http.put("/v1/me/library", params={"uris": saved})).status_code == 200
    contains = await http.get("/v1/me/library/contains", params={"uris": f"{saved},{other}"})
    assert contains.status_code == 200
    assert contains.json() == [True, False]  # Spotify's bare array
    tracks = (await http.get("/v1/me/tracks", params={"limit": 1})).json()
    assert tracks["items"][0]["track"]["id"] == saved.rsplit(":", 1)[1]
    assert tracks["items"][0]["added_at"].endswith("Z")
    assert (await http.put("/v1/me/library", params={"uris": "spotify:track:bad"})).status_code == 400
    assert (await http.delete("/v1/me/library", params={"uris": saved})).status_code == 200
    assert (await http.get("/v1/me/library/contains", params={"uris": saved})).json() == [False]
    following = await http.get("/v1/me/following", params={"type": "artist"})
    assert following.status_code == 200, following.text
    assert "artists" in following.json()
    assert (await http.get("/v1/me/following", params={"type": "user"})).status_code == 400
