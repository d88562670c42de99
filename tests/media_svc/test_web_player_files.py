"""media_svc's second root: the web player's bundle under /app/, public, same-origin code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from media_svc.app import make_app
from meshkit.signing import KeyRing

INDEX = b"<!doctype html><title>player</title>"
SCRIPT = b"console.log('player')"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (tmp_path / "secret.txt").write_text("outside the web root")
    return root


@pytest.fixture
async def web(site: Path, tmp_path: Path) -> AsyncIterator[TestClient]:
    app = make_app(tmp_path / "objects", KeyRing.parse("k:secret"), web_root=site)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_hashed_assets_are_cached_for_good(web: TestClient) -> None:
    response = await web.get("/app/assets/index-abc123.js")
    assert response.status == 200
    assert await response.read() == SCRIPT
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/app/", "/app/search", "/app/album/4aawyAB9vmqN3uQ7FjRGTy"])
async def test_every_screen_gets_the_page_which_is_never_cached_stale(web: TestClient, path: str) -> None:
    response = await web.get(path)
    assert response.status == 200
    assert await response.read() == INDEX
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_a_missing_asset_is_a_404_not_the_page(web: TestClient) -> None:
    # An old page asking for a previous build's file must fail as code, not run HTML as script.
    response = await web.get("/app/assets/index-gone.js")
    assert response.status == 404
    assert (await response.json())["error"]["status"] == 404


@pytest.mark.parametrize("path", ["/app/../secret.txt", "/app/%2e%2e/secret.txt", "/app/.hidden"])
async def test_nothing_outside_the_web_root(web: TestClient, path: str) -> None:
    response = await web.get(path)
    assert b"outside the web root" not in await response.read()


async def test_unbuilt_player_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path / "objects", KeyRing.parse("k:secret"), web_root=tmp_path / "nothing")
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/app/")
        assert response.status == 503
        assert "make install" in (await response.json())["error"]["message"]


async def test_without_a_web_root_there_is_no_app(tmp_path: Path) -> None:
    app = make_app(tmp_path / "objects", KeyRing.parse("k:secret"))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/app/")).status == 404
