"""Spotify's deprecated names beside the new ones, as Spotify sends them while they are deprecated.

A playlist's entries carry their track under `item` and under `track`, and a playlist (full or
simplified) carries its items under `items` and under `tracks`: the same objects under both, so a
client written against either shape works. Checked through the test mesh's Envoy as JSON, over
gRPC, and with a third-party Spotify client (spotipy) pointed at the mesh. The playlists belong to
an account registered for this module, so the demo accounts' playlists stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
import spotipy
from spotify.library.v1 import library_pb2

from meshctl.mesh import Mesh
from meshkit import ids

if TYPE_CHECKING:
    from tests.library_svc.conftest import LibraryHarness, User

pytestmark = pytest.mark.e2e

TRACKS = slice(400, 405)


@dataclass(frozen=True)
class Listener:
    token: str
    user: User

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def listener(
    new_account: Callable[..., tuple[str, str, str]],
    envoy_client: Callable[..., httpx.Client],
    lib: LibraryHarness,
) -> Listener:
    _, _, token = new_account("Compat Listener")
    me = envoy_client().get("/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return Listener(token, lib.user(ids.decode(me.json()["id"])))


@pytest.fixture(scope="module")
async def playlist(lib: LibraryHarness, listener: Listener) -> str:
    """A public playlist of five tracks, owned by the listener; its id."""
    made = await lib.create(listener.user, name="Both names", public=True)
    await lib.add(listener.user, made.id, lib.tracks[TRACKS])
    return made.id


@pytest.fixture(scope="module")
def expected(lib: LibraryHarness) -> list[str]:
    return [ids.encode(t) for t in lib.tracks[TRACKS]]


def get(client: httpx.Client, listener: Listener, path: str, **params: Any) -> dict[str, Any]:
    reply = client.get(path, params=params, headers=listener.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def assert_both_names(entries: list[dict[str, Any]], expected: list[str]) -> None:
    """Every entry carries its track under `item` and `track`, equal, and in playlist order."""
    assert [e["item"]["id"] for e in entries] == expected
    for entry in entries:
        assert entry["track"] == entry["item"]
        assert entry["item"]["type"] == "track" and entry["item"]["album"]["name"] == "Fixture Tracks"


def test_a_page_of_items_carries_item_and_track(
    envoy_client: Callable[..., httpx.Client], listener: Listener, playlist: str, expected: list[str]
) -> None:
    page = get(envoy_client(), listener, f"/v1/playlists/{playlist}/items", limit=100)
    assert page["total"] == len(expected)
    assert_both_names(page["items"], expected)


def test_a_playlist_carries_items_and_tracks(
    envoy_client: Callable[..., httpx.Client], listener: Listener, playlist: str, expected: list[str]
) -> None:
    body = get(envoy_client(), listener, f"/v1/playlists/{playlist}")
    assert body["items"]["total"] == len(expected)
    assert f"/v1/playlists/{playlist}/items" in body["items"]["href"]
    assert_both_names(body["items"]["items"], expected)
    assert body["tracks"] == body["items"]


def test_listed_playlists_carry_items_and_tracks(
    envoy_client: Callable[..., httpx.Client], listener: Listener, playlist: str, expected: list[str]
) -> None:
    client = envoy_client()
    for path in ("/v1/me/playlists", f"/v1/users/{listener.user.key}/playlists"):
        (listed,) = [p for p in get(client, listener, path)["items"] if p["id"] == playlist]
        assert listed["items"]["total"] == len(expected), path
        assert listed["items"]["href"].endswith(f"/v1/playlists/{playlist}/items"), path
        assert listed["tracks"] == listed["items"], path


def test_the_deprecated_tracks_path_reads_and_edits_like_items(
    envoy_client: Callable[..., httpx.Client], listener: Listener, expected: list[str]
) -> None:
    """Clients written before the rename call `/v1/playlists/{id}/tracks` for all four verbs."""
    http = envoy_client()
    http.headers.update(listener.headers)
    made = http.post("/v1/me/playlists", json={"name": "Old paths"})
    assert made.status_code == 200, made.text
    old, new = (f"/v1/playlists/{made.json()['id']}/{name}" for name in ("tracks", "items"))
    uris = [f"spotify:track:{track}" for track in expected]

    def listed(path: str) -> list[str]:
        reply = http.get(path, params={"limit": 50})
        assert reply.status_code == 200, reply.text
        return [entry["track"]["id"] for entry in reply.json()["items"]]

    added = http.post(old, json={"uris": uris[:3]})
    assert added.status_code == 200, added.text
    assert listed(old) == listed(new) == expected[:3]
    moved = http.put(old, json={"range_start": 0, "insert_before": 3})
    assert moved.status_code == 200, moved.text
    assert listed(new) == [*expected[1:3], expected[0]]
    removed = http.request("DELETE", old, json={"tracks": [{"uri": uris[1]}]})
    assert removed.status_code == 200, removed.text
    assert listed(old) == [expected[2], expected[0]]
    unknown = http.post(old, json={"uris": ["spotify:album:x"]})
    assert unknown.status_code == 400, unknown.text
    assert listed(new) == [expected[2], expected[0]]


async def test_grpc_replies_carry_both_fields(
    lib: LibraryHarness, listener: Listener, playlist: str, expected: list[str]
) -> None:
    metadata = listener.user.metadata
    page = await lib.stub.ListPlaylistItems(
        library_pb2.ListPlaylistItemsRequest(id=playlist, limit=100), metadata=metadata, timeout=10
    )
    assert [e.item.id for e in page.items] == expected
    assert all(e.HasField("track") and e.track == e.item for e in page.items)
    request = library_pb2.GetPlaylistRequest(id=playlist)
    full = await lib.stub.GetPlaylist(request, metadata=metadata, timeout=10)
    assert [e.item.id for e in full.items.items] == expected
    assert full.HasField("tracks") and full.tracks == full.items


def spotify_client(running_mesh: Mesh, listener: Listener) -> spotipy.Spotify:
    """spotipy as a web developer would use it, with only its base URL changed to the mesh's."""
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    client = spotipy.Spotify(
        auth=listener.token, requests_session=session, requests_timeout=10, retries=0, status_retries=0
    )
    client.prefix = f"{running_mesh.envoy_url}/v1/"
    return client


def test_spotipy_reads_the_old_shape_and_the_new(
    running_mesh: Mesh, listener: Listener, playlist: str, expected: list[str]
) -> None:
    client = spotify_client(running_mesh, listener)

    page = client.playlist_items(playlist, limit=2)
    read: list[str] = []
    while page:  # following Spotify's `next` links as spotipy does
        read += [entry["track"]["id"] for entry in page["items"]]
        assert [entry["item"]["id"] for entry in page["items"]] == read[-len(page["items"]) :]
        page = client.next(page)
    assert read == expected

    whole = client.playlist(playlist)
    assert [entry["track"]["id"] for entry in whole["tracks"]["items"]] == expected
    assert [entry["item"]["id"] for entry in whole["items"]["items"]] == expected

    (listed,) = [p for p in client.current_user_playlists()["items"] if p["id"] == playlist]
    assert listed["tracks"]["total"] == listed["items"]["total"] == len(expected)
