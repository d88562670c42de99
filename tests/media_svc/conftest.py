"""Fixtures for media_svc: a temporary storage root with real Ogg Vorbis files, key rings, a client.

Self-contained on purpose: nothing here depends on a project-wide tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from aiohttp.test_utils import TestClient, TestServer

from media_svc.app import make_app
from meshkit.signing import KeyRing, sign

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
OLD_KEYS = "old-1:the-old-secret-that-signed-yesterday"
NEW_KEYS = "new-2:the-new-secret-that-signs-today," + OLD_KEYS
# A ring the server has never heard of, for the unknown-kid case.
FOREIGN_KEYS = "foreign-9:someone-elses-secret"


def _ogg_vorbis(seconds: float, seed: int) -> bytes:
    """A real Ogg Vorbis file (tones plus noise so it does not compress to nothing)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(44100 * seconds)) / 44100
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], axis=1)
    signal = (tones + 0.1 * rng.standard_normal(tones.shape)).astype("float32")
    buf = io.BytesIO()
    sf.write(buf, signal, 44100, format="OGG", subtype="VORBIS")
    return buf.getvalue()


@dataclass(frozen=True)
class Store:
    """The temporary storage root and the bytes written into it."""

    root: Path
    track_160: bytes
    track_320: bytes
    seek_index: bytes
    preview: bytes

    @property
    def path_160(self) -> str:
        return f"/media/tracks/{TRACK_ID}_160kbps.ogg"

    @property
    def path_320(self) -> str:
        return f"/media/tracks/{TRACK_ID}_320kbps.ogg"


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("objects")
    tracks = root / "tracks"
    tracks.mkdir()
    track_160 = _ogg_vorbis(6.0, seed=1)
    track_320 = _ogg_vorbis(6.0, seed=2)
    preview = _ogg_vorbis(1.0, seed=3)
    # More than 64 KiB, so Range: bytes=0-65535 is a strict prefix.
    assert len(track_160) > 65536 and track_160.startswith(b"OggS")
    seek_index = json.dumps({"bytes_per_second": 20000, "points": [[0, 0], [1000, 20000]]}).encode()
    (tracks / f"{TRACK_ID}_160kbps.ogg").write_bytes(track_160)
    (tracks / f"{TRACK_ID}_320kbps.ogg").write_bytes(track_320)
    (tracks / f"{TRACK_ID}_160kbps.seek.json").write_bytes(seek_index)
    (tracks / f"{TRACK_ID}_preview.ogg").write_bytes(preview)
    # Something outside the root that traversal attempts aim at.
    (root.parent / "outside-secret.txt").write_text("not for you")
    (tracks / "escape.ogg").symlink_to(root.parent / "outside-secret.txt")
    (tracks / ".hidden.ogg").write_bytes(b"OggS hidden")
    return Store(root, track_160, track_320, seek_index, preview)


class FakeClock:
    """The app's clock; tests read or move ``now``."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def old_ring() -> KeyRing:
    return KeyRing.parse(OLD_KEYS)


@pytest.fixture
def server_ring() -> KeyRing:
    """What the server verifies with: after a rotation, the new key first and the old one kept."""
    return KeyRing.parse(NEW_KEYS)


@pytest.fixture
def signed(server_ring: KeyRing, clock: FakeClock):
    """``signed(path, uid="user-1", ttl_s=3600)`` → path?query, signed like playback_svc would."""

    def _sign(path: str, user_id: str = "user-1", ttl_s: int = 3600) -> str:
        return sign(path, user_id, ttl_s=ttl_s, now=clock.now, keyring=server_ring)

    return _sign


@pytest.fixture
async def client(store: Store, server_ring: KeyRing, clock: FakeClock) -> AsyncIterator[TestClient]:
    app = make_app(store.root, server_ring, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _raw_get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send ``target`` byte for byte (HTTP clients normalise ``..`` away); return (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: media\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def raw_get():
    """``await raw_get(port, target)`` → (status, body), with the request target sent verbatim."""
    return _raw_get


@pytest.fixture
def foreign_ring() -> KeyRing:
    return KeyRing.parse(FOREIGN_KEYS)


@pytest.fixture
def track_id() -> str:
    return TRACK_ID
