"""One real RPC of every service, as JSON and as native gRPC, through the mesh's own Envoy."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.library.v1 import library_pb2, library_pb2_grpc
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids, topics
from meshkit.services import GRPC_SERVICES
from tests import kafka_tail

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def http(running_mesh: Mesh, demo_token: str) -> httpx.Client:
    """JSON through Envoy, signed in as the demo user (Bearer token)."""
    with httpx.Client(
        base_url=running_mesh.envoy_url, timeout=10, headers={"authorization": f"Bearer {demo_token}"}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous_http(running_mesh: Mesh) -> httpx.Client:
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10) as client:
        yield client


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds the session token to every call, as the SDK does."""

    def __init__(self, token: str) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        # grpc's call details are a namedtuple.
        metadata = (*(client_call_details.metadata or ()), *self.metadata)
        return continuation(client_call_details._replace(metadata=metadata), request)


@pytest.fixture(scope="module")
def channel(running_mesh: Mesh, demo_token: str) -> grpc.Channel:
    """Native gRPC through Envoy, signed in as the demo user (`authorization` metadata)."""
    with grpc.insecure_channel(running_mesh.grpc_target) as chan:
        yield grpc.intercept_channel(chan, _BearerInterceptor(demo_token))


@pytest.fixture(scope="module")
def anonymous_channel(running_mesh: Mesh) -> grpc.Channel:
    with grpc.insecure_channel(running_mesh.grpc_target) as chan:
        yield chan


def test_every_service_reports_serving(running_mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.internal_ports[service]}") as chan:
            reply = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_catalog_track_as_spotify_json(http: httpx.Client) -> None:
    reply = http.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}", params={"market": "SE"})
    assert reply.status_code == 200
    track = reply.json()
    assert track["id"] == demo.DEMO_TRACK_ID
    assert track["type"] == "track"
    assert track["uri"] == f"spotify:track:{demo.DEMO_TRACK_ID}"
    assert track["href"].endswith(f"/v1/tracks/{demo.DEMO_TRACK_ID}")
    assert track["artists"][0]["name"] == "The Loud Valleys"
    assert track["album"]["album_type"] == "album"
    assert track["duration_ms"] > 0
    assert track["track_number"] == 1
    assert reply.headers["x-request-id"]


def test_catalog_track_over_grpc_accepts_a_uri(channel: grpc.Channel) -> None:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    track = stub.GetTrack(catalog_pb2.GetTrackRequest(id=f"spotify:track:{demo.DEMO_TRACK_ID}"), timeout=5)
    assert track.id == demo.DEMO_TRACK_ID
    assert track.album.artists[0].id == demo.DEMO_ARTIST_ID


def test_catalog_errors_map_to_http_and_grpc_statuses(http: httpx.Client, channel: grpc.Channel) -> None:
    assert http.get("/v1/tracks/not-an-id").status_code == 400
    unknown = ids.encode(uuid.uuid4())
    missing = http.get(f"/v1/tracks/{unknown}")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"status": 404, "message": f"track {unknown} not found"}
    with pytest.raises(grpc.RpcError) as err:
        catalog_pb2_grpc.CatalogServiceStub(channel).GetTrack(
            catalog_pb2.GetTrackRequest(id=unknown), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_catalog_multi_get_keeps_request_order(http: httpx.Client) -> None:
    second = ids.encode(demo.demo_uuid("track:Neon Cascade:0:1"))
    reply = http.get("/v1/tracks", params={"ids": f"{second},{demo.DEMO_TRACK_ID}"})
    assert reply.status_code == 200
    assert [t["id"] for t in reply.json()["tracks"]] == [second, demo.DEMO_TRACK_ID]


def test_auth_public_profile_json_and_grpc(http: httpx.Client, channel: grpc.Channel) -> None:
    profile = http.get(f"/v1/users/{demo.DEMO_USER_ID}").json()
    assert profile == {
        **profile,
        "id": demo.DEMO_USER_ID,
        "display_name": "Demo Listener",
        "type": "user",
        "uri": f"spotify:user:{demo.DEMO_USER_ID}",
    }
    assert "email" not in profile
    user = auth_pb2_grpc.AuthServiceStub(channel).GetUser(auth_pb2.GetUserRequest(user_id=demo.DEMO_USER_ID))
    assert user.display_name == "Demo Listener"


def test_library_playlist_embeds_tracks_from_catalog(http: httpx.Client, channel: grpc.Channel) -> None:
    playlist = http.get(f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}").json()
    assert playlist["name"] == "Demo Mix"
    assert playlist["owner"]["id"] == demo.DEMO_USER_ID
    assert playlist["items"]["total"] == 10
    first = playlist["items"]["items"][0]
    assert first["item"]["id"] == demo.DEMO_TRACK_ID
    assert first["added_by"]["id"] == demo.DEMO_USER_ID
    stub = library_pb2_grpc.LibraryServiceStub(channel)
    reply = stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=demo.DEMO_PLAYLIST_ID), timeout=5)
    assert [i.item.track_number for i in reply.items.items][:5] == [1, 2, 3, 4, 5]


def test_rec_genre_seeds_come_from_the_catalog(http: httpx.Client, channel: grpc.Channel) -> None:
    genres = http.get("/v1/recommendations/available-genre-seeds").json()["genres"]
    assert genres == sorted(demo.GENRES)
    stub = rec_pb2_grpc.RecommendationServiceStub(channel)
    assert list(stub.ListAvailableGenreSeeds(rec_pb2.ListAvailableGenreSeedsRequest()).genres) == genres


def test_playback_events_need_a_user_and_client_identity_headers_are_ignored(
    anonymous_http: httpx.Client, anonymous_channel: grpc.Channel
) -> None:
    event = {"idempotency_key": "k", "track_id": demo.DEMO_TRACK_ID, "event": "start", "position_ms": 0}
    spoofed = {"x-user-id": demo.DEMO_USER_ID, "x-user-roles": "admin"}
    reply = anonymous_http.post("/api/playback/events", json={"events": [event]}, headers=spoofed)
    assert reply.status_code == 401
    assert reply.json() == {"error": {"status": 401, "message": "No token provided"}}
    stub = playback_pb2_grpc.PlaybackServiceStub(anonymous_channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportPlaybackEvents(
            playback_pb2.ReportPlaybackEventsRequest(
                events=[
                    playback_pb2.ClientPlaybackEvent(
                        idempotency_key="k", track_id=demo.DEMO_TRACK_ID, event="start"
                    )
                ]
            ),
            metadata=tuple(spoofed.items()),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_playback_events_from_an_internal_caller_reach_kafka(running_mesh: Mesh) -> None:
    consumer = kafka_tail.tail(running_mesh.kafka_bootstrap, topics.PLAYBACK_EVENTS.name)
    listener = ids.encode(uuid.uuid4())  # not the demo user: the stream counts, into that user's history
    key = f"{listener}_{demo.DEMO_TRACK_ID}_{uuid.uuid4().hex}"
    with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['playback_svc']}") as chan:
        reply = playback_pb2_grpc.PlaybackServiceStub(chan).ReportPlaybackEvents(
            playback_pb2.ReportPlaybackEventsRequest(
                events=[
                    playback_pb2.ClientPlaybackEvent(
                        idempotency_key=key, track_id=demo.DEMO_TRACK_ID, event="progress", position_ms=31_000
                    ),
                    playback_pb2.ClientPlaybackEvent(idempotency_key=key, track_id="bogus", event="progress"),
                    playback_pb2.ClientPlaybackEvent(
                        idempotency_key=key, track_id=demo.DEMO_TRACK_ID, event="rewind"
                    ),
                ]
            ),
            metadata=(("x-user-id", listener), ("x-user-roles", "user,premium")),
            timeout=10,
        )
    assert reply.accepted == 1
    assert [(r.index, "track id" in r.reason) for r in reply.rejected] == [(1, True), (2, False)]
    assert "event must be one of" in reply.rejected[1].reason
    # Other tests publish on the same broker: keep only this test's session key.
    received = []
    for _ in range(20):
        for records in consumer.poll(timeout_ms=500).values():
            received.extend(
                r for r in records if playback_pb2.PlaybackEvent.FromString(r.value).idempotency_key == key
            )
        if received:
            break
    for records in consumer.poll(timeout_ms=500).values():  # a duplicate would be right behind it
        received.extend(
            r for r in records if playback_pb2.PlaybackEvent.FromString(r.value).idempotency_key == key
        )
    consumer.close()
    assert len(received) == 1
    event = playback_pb2.PlaybackEvent.FromString(received[0].value)
    assert received[0].key == listener.encode()
    assert (event.idempotency_key, event.position_ms, event.product) == (key, 31_000, "premium")
    assert event.event_type == playback_pb2.PlaybackEvent.EVENT_TYPE_PROGRESS


def test_media_origin_is_routed_and_refuses_unsigned_urls(anonymous_http: httpx.Client) -> None:
    # No session needed (a signed URL is its own authorization), so the refusal is media_svc's.
    reply = anonymous_http.get(f"/media/tracks/{demo.DEMO_TRACK_ID}_160kbps.ogg")
    assert reply.status_code == 403
    assert reply.json()["error"]["status"] == 403


def test_unknown_paths_are_404_json(http: httpx.Client, anonymous_http: httpx.Client) -> None:
    for client in (http, anonymous_http):
        reply = client.get("/v1/nothing-here")
        assert reply.status_code == 404
        assert reply.json()["error"]["status"] == 404


def test_health_needs_no_session(anonymous_http: httpx.Client) -> None:
    reply = anonymous_http.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_every_public_read_needs_a_session(
    anonymous_http: httpx.Client, anonymous_channel: grpc.Channel
) -> None:
    for path in (f"/v1/tracks/{demo.DEMO_TRACK_ID}", f"/v1/users/{demo.DEMO_USER_ID}", "/v1/me"):
        reply = anonymous_http.get(path)
        assert reply.status_code == 401, path
        assert reply.json()["error"]["status"] == 401
        assert reply.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(grpc.RpcError) as err:
        catalog_pb2_grpc.CatalogServiceStub(anonymous_channel).GetTrack(
            catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
