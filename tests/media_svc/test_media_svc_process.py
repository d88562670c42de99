"""``python -m media_svc`` as a real process: settings from the environment, SIGTERM shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from media_svc.server import parse_addr
from meshkit.signing import KeyRing, sign

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = "proc-1:a-secret-only-this-test-knows"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"media_svc exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise AssertionError("media_svc did not become healthy")


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        (":8090", ("0.0.0.0", 8090)),
        ("[::1]:8090", ("::1", 8090)),
    ],
)
def test_parse_addr(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize("addr", ["8090", "host:", "host:port"])
def test_parse_addr_rejects(addr: str) -> None:
    with pytest.raises(ValueError):
        parse_addr(addr)


def test_process_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "tracks").mkdir()
    payload = b"OggS" + bytes(range(256)) * 64
    (tmp_path / "tracks" / "t_96kbps.ogg").write_bytes(payload)
    port = _free_port()
    env = {
        **os.environ,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "STORAGE_ROOT": str(tmp_path),
        "MEDIA_SIGNING_KEYS": KEYS,
        "SHUTDOWN_GRACE_S": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "media_svc"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc)
        url = base + sign("/media/tracks/t_96kbps.ogg", "user-1", keyring=KeyRing.parse(KEYS))
        request = urllib.request.Request(url, headers={"Range": "bytes=4-13"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 206
            assert response.read() == payload[4:14]

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, output.decode(errors="replace")
        log = output.decode(errors="replace")
        assert "listening on 127.0.0.1" in log
        # The access log must not carry the signature (a bearer token).
        assert "/media/tracks/t_96kbps.ogg" in log
        assert "sig=" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
