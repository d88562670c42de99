"""media_svc over real HTTP: signed URLs in, byte ranges of real files out."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from media_svc.app import make_app
from meshkit.signing import KeyRing, sign


def _with_param(url: str, name: str, value: str) -> str:
    path, _, query = url.partition("?")
    params = dict(parse_qsl(query))
    params[name] = value
    return f"{path}?{urlencode(params)}"


def _query(url: str) -> str:
    return url.partition("?")[2]


async def _assert_refused(response, status: int = 403) -> dict:
    """A JSON error of the given status with no audio in it."""
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("Cache-Control") == "no-store"
    assert "Content-Range" not in response.headers
    body = await response.read()
    assert b"OggS" not in body
    payload = await response.json()
    assert payload["error"]["status"] == status
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    return payload


async def test_healthz(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_signed_url_serves_whole_file(client: TestClient, store, signed) -> None:
    response = await client.get(signed(store.path_160))
    assert response.status == 200
    assert await response.read() == store.track_160
    headers = response.headers
    assert headers["Content-Type"] == "audio/ogg"
    assert headers["Content-Length"] == str(len(store.track_160))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] and headers["Last-Modified"]
    assert headers["Cache-Control"] == "private, max-age=3600"


async def test_cache_lifetime_is_time_left_on_the_url(client: TestClient, store, signed, clock) -> None:
    url = signed(store.path_160, ttl_s=600)
    clock.now += 100
    response = await client.get(url)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, max-age=500"


async def test_first_64k(client: TestClient, store, signed) -> None:
    response = await client.get(signed(store.path_160), headers={"Range": "bytes=0-65535"})
    assert response.status == 206
    body = await response.read()
    assert body == store.track_160[:65536]
    assert response.headers["Content-Range"] == f"bytes 0-65535/{len(store.track_160)}"
    assert response.headers["Content-Length"] == "65536"
    assert response.headers["Content-Type"] == "audio/ogg"


async def test_open_range(client: TestClient, store, signed) -> None:
    size = len(store.track_160)
    response = await client.get(signed(store.path_160), headers={"Range": "bytes=70000-"})
    assert response.status == 206
    assert await response.read() == store.track_160[70000:]
    assert response.headers["Content-Range"] == f"bytes 70000-{size - 1}/{size}"


async def test_suffix_range(client: TestClient, store, signed) -> None:
    size = len(store.track_160)
    response = await client.get(signed(store.path_160), headers={"Range": "bytes=-500"})
    assert response.status == 206
    assert await response.read() == store.track_160[-500:]
    assert response.headers["Content-Range"] == f"bytes {size - 500}-{size - 1}/{size}"


async def test_unsatisfiable_range(client: TestClient, store, signed) -> None:
    size = len(store.track_160)
    response = await client.get(signed(store.path_160), headers={"Range": f"bytes={size + 10}-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert b"OggS" not in await response.read()


async def test_conditional_get_is_304(client: TestClient, store, signed) -> None:
    url = signed(store.path_160)
    first = await client.get(url)
    await first.read()
    again = await client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""


async def test_seek_index_and_preview(client: TestClient, store, signed, track_id: str) -> None:
    seek = await client.get(signed(f"/media/tracks/{track_id}_160kbps.seek.json"))
    assert seek.status == 200
    assert seek.headers["Content-Type"] == "application/json"
    assert await seek.read() == store.seek_index

    preview = await client.get(signed(f"/media/tracks/{track_id}_preview.ogg"))
    assert preview.status == 200
    assert preview.headers["Content-Type"] == "audio/ogg"
    assert await preview.read() == store.preview


async def test_head(client: TestClient, store, signed) -> None:
    response = await client.head(signed(store.path_160))
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(store.track_160))
    assert response.headers["Content-Type"] == "audio/ogg"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert await response.read() == b""


async def test_head_with_bad_signature_is_403(client: TestClient, store, signed) -> None:
    response = await client.head(_with_param(signed(store.path_160), "sig", "A" * 43))
    assert response.status == 403
    assert await response.read() == b""


# --- refusals: 403, JSON, no bytes -------------------------------------------------------------


async def test_tampered_signature(client: TestClient, store, signed) -> None:
    url = signed(store.path_160)
    sig = dict(parse_qsl(_query(url)))["sig"]
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    payload = await _assert_refused(await client.get(_with_param(url, "sig", flipped)))
    assert "signature" in payload["error"]["message"]


async def test_tampered_signature_with_range(client: TestClient, store, signed) -> None:
    url = _with_param(signed(store.path_160), "sig", "A" * 43)
    await _assert_refused(await client.get(url, headers={"Range": "bytes=0-65535"}))


async def test_expired_url(client: TestClient, store, signed, clock) -> None:
    url = signed(store.path_160, ttl_s=60)
    clock.now += 61
    payload = await _assert_refused(await client.get(url))
    assert "expired" in payload["error"]["message"]


async def test_extended_expiry(client: TestClient, store, signed) -> None:
    url = signed(store.path_160, ttl_s=60)
    exp = int(dict(parse_qsl(_query(url)))["exp"])
    await _assert_refused(await client.get(_with_param(url, "exp", str(exp + 86400))))


async def test_changed_path_to_higher_quality(client: TestClient, store, signed) -> None:
    url = signed(store.path_160)
    await _assert_refused(await client.get(f"{store.path_320}?{_query(url)}"))


async def test_changed_path_to_other_track(client: TestClient, store, signed, track_id: str) -> None:
    url = signed(store.path_160)
    await _assert_refused(await client.get(f"/media/tracks/{track_id}_preview.ogg?{_query(url)}"))


async def test_changed_uid(client: TestClient, store, signed) -> None:
    url = signed(store.path_160, user_id="user-1")
    await _assert_refused(await client.get(_with_param(url, "uid", "user-2")))


async def test_unknown_kid(client: TestClient, store, foreign_ring: KeyRing) -> None:
    url = sign(store.path_160, "user-1", keyring=foreign_ring)
    payload = await _assert_refused(await client.get(url))
    assert "key" in payload["error"]["message"]


async def test_kid_swapped_to_another_known_key(client: TestClient, store, signed) -> None:
    url = signed(store.path_160)  # signed with new-2
    await _assert_refused(await client.get(_with_param(url, "kid", "old-1")))


@pytest.mark.parametrize("drop", ["exp", "uid", "kid", "sig"])
async def test_missing_parameter(client: TestClient, store, signed, drop: str) -> None:
    path, _, query = signed(store.path_160).partition("?")
    kept = urlencode([(k, v) for k, v in parse_qsl(query) if k != drop])
    await _assert_refused(await client.get(f"{path}?{kept}"))


async def test_unsigned(client: TestClient, store) -> None:
    await _assert_refused(await client.get(store.path_160))


async def test_duplicate_parameter(client: TestClient, store, signed) -> None:
    url = signed(store.path_160, user_id="user-1")
    await _assert_refused(await client.get(f"{url}&uid=user-2"))


# --- key rotation ------------------------------------------------------------------------------


async def test_url_signed_with_old_key_still_works_after_rotation(
    client: TestClient, store, old_ring: KeyRing, server_ring: KeyRing, clock
) -> None:
    assert server_ring.signing_kid == "new-2" and "old-1" in server_ring
    url = sign(store.path_160, "user-1", now=clock.now, keyring=old_ring)
    assert "kid=old-1" in url
    response = await client.get(url, headers={"Range": "bytes=0-65535"})
    assert response.status == 206
    assert await response.read() == store.track_160[:65536]


async def test_old_key_removed_rejects_its_urls(store, old_ring: KeyRing, clock) -> None:
    app = make_app(store.root, KeyRing.parse("new-2:the-new-secret-that-signs-today"), clock=clock)
    async with TestClient(TestServer(app)) as client:
        url = sign(store.path_160, "user-1", now=clock.now, keyring=old_ring)
        await _assert_refused(await client.get(url))


# --- paths -------------------------------------------------------------------------------------


async def test_missing_file_is_404(client: TestClient, signed) -> None:
    payload = await _assert_refused(
        await client.get(signed("/media/tracks/0000000000000000000000_160kbps.ogg")), status=404
    )
    assert payload["error"]["message"] == "object not found"


async def test_directory_is_404(client: TestClient, signed) -> None:
    await _assert_refused(await client.get(signed("/media/tracks")), status=404)


@pytest.mark.parametrize(
    "target",
    [
        "/media/../outside-secret.txt",
        "/media/tracks/../../outside-secret.txt",
        "/media/%2e%2e/outside-secret.txt",
        "/media/tracks%2F..%2F..%2Foutside-secret.txt",
        "/media//etc/passwd",
        "/media/%2Fetc%2Fpasswd",
        "/media/tracks/escape.ogg",
        "/media/tracks/.hidden.ogg",
        "/media/./tracks/escape.ogg",
    ],
)
async def test_traversal_is_rejected_even_when_signed(
    client: TestClient, signed, raw_get, target: str
) -> None:
    """Sent byte for byte; signed over the path aiohttp decodes, so only the path guard stops it."""
    query = _query(signed(unquote(target)))
    status, body = await raw_get(client.port, f"{target}?{query}")
    assert status in (403, 404)
    assert b"not for you" not in body and b"root:" not in body and b"OggS" not in body


@pytest.mark.parametrize(
    "target",
    ["/media/../outside-secret.txt", "/media/%2e%2e/%2e%2e/etc/passwd", "/media/tracks/escape.ogg"],
)
async def test_traversal_is_rejected_unsigned(client: TestClient, raw_get, target: str) -> None:
    status, body = await raw_get(client.port, target)
    assert status == 403
    assert b"not for you" not in body and b"root:" not in body


# --- the rest of the surface -------------------------------------------------------------------


async def test_method_not_allowed_is_json(client: TestClient, store, signed) -> None:
    response = await client.post(signed(store.path_160), data=b"x")
    payload = await _assert_refused(response, status=405)
    assert payload["error"]["status"] == 405
    assert "GET" in response.headers["Allow"]


async def test_unknown_route_is_json_404(client: TestClient) -> None:
    await _assert_refused(await client.get("/nope"), status=404)


async def test_metrics(client: TestClient, store, signed) -> None:
    await (await client.get(signed(store.path_160), headers={"Range": "bytes=0-9"})).read()
    await (await client.get(store.path_160)).read()
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert 'http_request_duration_seconds_count{method="GET",route="/media/{path}",status_code="206"}' in text
    assert 'media_signature_rejections_total{reason="malformed"} 1.0' in text
