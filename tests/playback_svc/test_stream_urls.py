"""GetStreamUrl on the in-process playback_svc against the mesh's catalog_svc, and its URLs fetched
from the real media origin app serving the Ogg Vorbis files catalog's ingest wrote."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from grpc import aio
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from spotify.playback.v1 import playback_pb2

from media_svc.app import make_app
from meshctl.mesh import Mesh
from meshkit import ids
from meshkit.metrics import http_route
from meshkit.signing import default_keyring
from tests.playback_svc.conftest import PUBLIC_BASE_URL, MediaTrack
from tests.playback_svc.helpers import new_user_id, user_metadata


async def stream_url(
    playback, user: str, product: str = "premium", **fields
) -> playback_pb2.GetStreamUrlResponse:
    request = playback_pb2.GetStreamUrlRequest(**fields)
    return await playback.stub.GetStreamUrl(request, metadata=user_metadata(user, product), timeout=5)


async def status_of(playback, user: str | None, **fields) -> grpc.StatusCode:
    metadata = user_metadata(user) if user else ()
    with pytest.raises(aio.AioRpcError) as err:
        await playback.stub.GetStreamUrl(
            playback_pb2.GetStreamUrlRequest(**fields), metadata=metadata, timeout=5
        )
    return err.value.code()


def kbps_in_path(url: str) -> int:
    return int(urlsplit(url).path.rsplit("_", 1)[1].removesuffix("kbps.ogg"))


@pytest.fixture
async def media(media_track: MediaTrack) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(media_track.root, default_keyring()))) as client:
        yield client


def relative(url: str) -> str:
    """The path and query a client sends to the origin (the public base is Envoy's, not the test's)."""
    assert url.startswith(PUBLIC_BASE_URL + "/media/")
    return url.removeprefix(PUBLIC_BASE_URL)


def nominal_kbps(ogg: bytes) -> int:
    """The nominal bitrate in the Vorbis identification header (first packet of the first page)."""
    assert ogg[:4] == b"OggS"
    body = 27 + ogg[26]
    packet = ogg[body : body + 30]
    assert packet[:7] == b"\x01vorbis"
    return round(struct.unpack_from("<i", packet, 20)[0] / 1000)


async def test_premium_on_wifi_gets_320_with_every_alternative(playback, media_track) -> None:
    before = int(time.time())
    starts = REGISTRY.get_sample_value("stream_start_seconds_count", {"quality_kbps": "320"}) or 0
    reply = await stream_url(
        playback, new_user_id(), track_id=media_track.track_id, quality="high", connection="wifi"
    )
    assert reply.quality_kbps == 320 and kbps_in_path(reply.url) == 320
    assert reply.codec == "vorbis"
    assert reply.track_id == media_track.track_id and reply.duration_ms == media_track.duration_ms
    assert before + 3600 <= reply.expires_at.seconds <= int(time.time()) + 3600
    assert sorted(a.quality_kbps for a in reply.alternatives) == [96, 160]
    for alternative in reply.alternatives:
        assert kbps_in_path(alternative.url) == alternative.quality_kbps
        assert alternative.seek_index_url.split("?")[0].endswith(f"_{alternative.quality_kbps}kbps.seek.json")
    assert reply.seek_index_url.split("?")[0].endswith("_320kbps.seek.json")
    assert dict(parse_qsl(urlsplit(reply.url).query))["exp"] == str(reply.expires_at.seconds)
    assert REGISTRY.get_sample_value("stream_start_seconds_count", {"quality_kbps": "320"}) == starts + 1


async def test_free_user_asking_for_high_gets_160_and_never_a_320_url(playback, media_track) -> None:
    reply = await stream_url(
        playback, new_user_id(), "free", track_id=media_track.track_id, quality="high", connection="wifi"
    )
    assert reply.quality_kbps == 160
    assert [a.quality_kbps for a in reply.alternatives] == [96]
    assert "320kbps" not in str(reply)


@pytest.mark.parametrize(
    ("product", "quality", "connection", "bandwidth", "expected"),
    [
        ("premium", "auto", "cellular", 0, 96),  # data saving on a cellular network
        ("premium", "", "cellular", 0, 96),  # auto is the default
        ("premium", "high", "cellular", 0, 320),  # the user's explicit cellular setting is honoured
        ("free", "high", "cellular", 0, 160),  # ... but never above the subscription
        ("premium", "auto", "ethernet", 0, 320),
        ("premium", "auto", "wifi", 400, 160),  # 400 kbps measured: 160 fits with 2x headroom
        ("premium", "auto", "wifi", 150, 96),  # nothing fits: the lowest file rather than none
        ("premium", "low", "wifi", 0, 96),
        ("premium", "normal", "unknown", 0, 160),
    ],
)
async def test_quality_is_the_lowest_of_request_subscription_and_connection(
    playback, media_track, product, quality, connection, bandwidth, expected
) -> None:
    reply = await stream_url(
        playback,
        new_user_id(),
        product,
        track_id=f"spotify:track:{media_track.track_id}",
        quality=quality,
        connection=connection,
        bandwidth_kbps=bandwidth,
    )
    assert reply.quality_kbps == expected
    assert kbps_in_path(reply.url) == expected


async def test_no_url_for_unknown_tracks_missing_audio_or_bad_input(playback, catalog_writer) -> None:
    user = new_user_id()
    silent = await catalog_writer.track()  # a track whose audio has not been ingested
    assert await status_of(playback, user, track_id="4uLU6hMCjMI75M1A2tKUQC") == grpc.StatusCode.NOT_FOUND
    assert await status_of(playback, user, track_id=silent) == grpc.StatusCode.FAILED_PRECONDITION
    assert await status_of(playback, user, track_id="not-an-id") == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(playback, user, track_id=silent, quality="ultra") == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await status_of(playback, user, track_id=silent, connection="carrier-pigeon")
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await status_of(playback, None, track_id=silent) == grpc.StatusCode.UNAUTHENTICATED


async def test_the_signed_url_serves_a_valid_ogg_vorbis_range(playback, media_track, media) -> None:
    reply = await stream_url(
        playback, new_user_id(), "free", track_id=media_track.track_id, quality="normal", connection="wifi"
    )
    response = await media.get(relative(reply.url), headers={"Range": "bytes=0-65535"})
    assert response.status == 206
    body = await response.read()
    assert body == media_track.files[160][:65536]
    assert body.startswith(b"OggS")
    assert nominal_kbps(body) == 160  # the bytes really are the 160 kbps rendition
    assert response.headers["Content-Range"] == f"bytes 0-65535/{len(media_track.files[160])}"
    seek = await media.get(relative(reply.seek_index_url))
    assert seek.status == 200 and (await seek.json())["interval_ms"] == 1000


def _tampered(url: str, name: str, value: str) -> str:
    path, _, query = relative(url).partition("?")
    params = dict(parse_qsl(query))
    params[name] = value
    return f"{path}?{urlencode(params)}"


async def test_a_modified_path_user_expiry_or_signature_gets_403(playback, media_track, media) -> None:
    user = new_user_id()
    reply = await stream_url(playback, user, "free", track_id=media_track.track_id, quality="normal")
    path, _, query = relative(reply.url).partition("?")
    params = dict(parse_qsl(query))
    sig = params["sig"]
    forged = {
        "path (a free user reaching for 320)": f"{path.replace('_160kbps', '_320kbps')}?{query}",
        "user": _tampered(reply.url, "uid", new_user_id()),
        "expiry": _tampered(reply.url, "exp", str(int(params["exp"]) + 86_400)),
        "signature": _tampered(reply.url, "sig", ("A" if sig[0] != "A" else "B") + sig[1:]),
    }
    assert (await media.get(relative(reply.url), headers={"Range": "bytes=0-3"})).status == 206
    for what, url in forged.items():
        response = await media.get(url, headers={"Range": "bytes=0-65535"})
        body = await response.read()
        assert response.status == 403, what
        assert b"OggS" not in body, what


async def test_audio_files_are_cached_between_stream_starts(
    playback, media_track, running_mesh: Mesh
) -> None:
    """The real catalog answers ListTrackAudioFiles once for five stream starts (a 30 s cache);
    nothing but stream starts and downloads calls it, so its own request count says so."""
    track = media_track.track_id
    await stream_url(playback, new_user_id(), track_id=track)  # cached from here on
    before = catalog_calls(running_mesh, "ListTrackAudioFiles")
    for _ in range(5):
        reply = await stream_url(playback, new_user_id(), track_id=track)
        assert reply.track_id == track and reply.url
    assert catalog_calls(running_mesh, "ListTrackAudioFiles") == before
    # A client hammering an id catalog does not know does not hammer catalog either.
    unknown, refused = ids.encode(uuid.uuid4()), catalog_calls(running_mesh, "ListTrackAudioFiles", "404")
    for _ in range(5):
        assert await status_of(playback, new_user_id(), track_id=unknown) == grpc.StatusCode.NOT_FOUND
    assert catalog_calls(running_mesh, "ListTrackAudioFiles", "404") == refused + 1


def catalog_calls(mesh: Mesh, rpc: str, status: str = "200") -> float:
    """How many `rpc` calls the mesh's catalog_svc answered with `status`, from its own /metrics."""
    reply = httpx.get(f"http://127.0.0.1:{mesh.layout.metrics_ports['catalog_svc']}/metrics", timeout=5)
    reply.raise_for_status()
    verb, route = http_route(f"/spotify.catalog.v1.CatalogService/{rpc}")
    labels = {"method": verb, "route": route, "status_code": status}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "http_request_duration_seconds_count" and sample.labels == labels:
                return sample.value
    return 0.0
