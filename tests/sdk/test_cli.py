"""The command-line player, each command run as a subprocess against the test mesh's Envoy: what
it prints, the files it writes and its exit status; a failure is one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from spotify.catalog.v1 import catalog_pb2

from devdata import demo
from meshctl import datatier
from meshctl.mesh import Mesh
from meshkit.config import PROJECT_ROOT
from sdk.client import MeshClient
from tests.e2e.walk import recommendations_built

Account = tuple[str, str, str]


@dataclass
class Cli:
    url: str
    home: Path

    def __call__(
        self, *args: str, url: str | None = None, password: str = ""
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "SPOTIFY_MESH_URL": url or self.url,
            "SPOTIFY_MESH_TOKEN_FILE": str(self.home / "token"),
            "SPOTIFY_MESH_DATA_DIR": str(self.home / "data"),
            "COLUMNS": "200",
        }
        if password:
            env["SPOTIFY_MESH_PASSWORD"] = password
        return subprocess.run(
            [sys.executable, "-m", "sdk.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=PROJECT_ROOT,
        )


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def cli(sdk_url: str, tmp_path: Path) -> Cli:
    return Cli(sdk_url, tmp_path)


def test_a_listener_signs_in_searches_plays_and_keeps_playlists(
    cli: Cli, new_account: Callable[..., Account], tmp_path: Path
) -> None:
    email, password, _ = new_account("CLI Listener")
    signed = cli("login", email, password=password)
    assert signed.returncode == 0, signed.stderr
    assert "Signed in as CLI Listener" in signed.stdout
    assert (tmp_path / "token").exists()

    who = cli("me")
    assert who.returncode == 0 and email in who.stdout, who.stderr

    with MeshClient(cli.url, token=(tmp_path / "token").read_text()) as client:
        track = client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    found = cli("search", track.name, "--type", "track")
    assert found.returncode == 0 and demo.DEMO_TRACK_ID in found.stdout, found.stdout + found.stderr

    song = tmp_path / "song.wav"
    played = cli("play", f"spotify:track:{demo.DEMO_TRACK_ID}", "--out", str(song))
    assert played.returncode == 0, played.stderr
    assert "played" in played.stdout and "kbps" in played.stdout
    with wave.open(str(song)) as written:
        assert abs(written.getnframes() * 1000 / written.getframerate() - track.duration_ms) <= 10

    created = cli("playlists", "create", "Commute")
    assert created.returncode == 0, created.stderr
    playlist_id = created.stdout.strip().rsplit(" ", 1)[-1]
    added = cli("playlists", "add", playlist_id, demo.DEMO_TRACK_ID)
    assert added.returncode == 0 and "Added 1 track" in added.stdout, added.stderr
    listed = cli("playlists", "list")
    assert "Commute" in listed.stdout and playlist_id in listed.stdout, listed.stdout

    album_dir = tmp_path / "album"
    whole = cli("play", f"spotify:playlist:{playlist_id}", "--out", str(album_dir))
    assert whole.returncode == 0, whole.stderr
    assert len(list(album_dir.glob("*.wav"))) == 1

    assert cli("logout").returncode == 0
    assert not (tmp_path / "token").exists()
    one_line_error(cli("me"), "not signed in")


def test_failures_are_one_line(cli: Cli, new_account: Callable[..., Account]) -> None:
    email, password, _ = new_account("CLI Errors")
    one_line_error(cli("login", email, password="wrong-password"), "wrong email or password")
    assert cli("login", email, password=password).returncode == 0
    one_line_error(cli("play", "spotify:episode:1", "--out", "x.wav"), "spotify:track")
    one_line_error(cli("play", demo.DEMO_TRACK_ID), "--out")
    one_line_error(cli("play", "0000000000000000000000", "--out", "x.wav"), "not found")
    one_line_error(cli("recs", "radio"), "one seed")
    dead = f"http://127.0.0.1:{datatier.free_port()}"
    one_line_error(cli("me", url=dead), "cannot be reached")
    usage = cli("playlists", "nonsense")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_downloads_play_offline_and_recommendations(
    cli: Cli,
    running_mesh: Mesh,
    new_account: Callable[..., Account],
    grant_premium: Callable[[str], str],
    tmp_path: Path,
) -> None:
    email, password, token = new_account("CLI Offline")
    user_id = grant_premium(token)
    assert cli("login", email, password=password).returncode == 0
    created = cli("playlists", "create", "Tunnel")
    playlist_id = created.stdout.strip().rsplit(" ", 1)[-1]
    assert cli("playlists", "add", playlist_id, demo.DEMO_TRACK_ID).returncode == 0

    fetched = cli("download", playlist_id)
    assert fetched.returncode == 0 and "1 track(s)" in fetched.stdout, fetched.stdout + fetched.stderr
    listed = cli("offline", "list")
    assert demo.DEMO_TRACK_ID in listed.stdout, listed.stdout

    # The mesh out of reach: the download still plays.
    dead = f"http://127.0.0.1:{datatier.free_port()}"
    offline = tmp_path / "offline.wav"
    played = cli("offline", "play", demo.DEMO_TRACK_ID, "--out", str(offline), "--user-id", user_id, url=dead)
    assert played.returncode == 0, played.stderr
    with wave.open(str(offline)) as written:
        assert written.getnframes() > 0
    renewed = cli("offline", "renew")
    assert renewed.returncode == 0 and "Renewed 0 license(s)" in renewed.stdout, renewed.stderr

    recommendations_built(running_mesh)
    radio = cli("recs", "radio", "--track", demo.DEMO_TRACK_ID, "--limit", "5")
    assert radio.returncode == 0, radio.stderr
    assert len([line for line in radio.stdout.splitlines() if len(line.split()) > 1]) >= 5


def test_a_listener_downloads_their_data_then_deletes_the_account(
    cli: Cli, new_account: Callable[..., Account], tmp_path: Path
) -> None:
    email, password, _ = new_account("CLI Leaver")
    assert cli("login", email, password=password).returncode == 0
    exported = cli("account", "export", "--out", str(tmp_path / "mine.zip"))
    assert exported.returncode == 0, exported.stderr
    assert "Saved" in exported.stdout and "files" in exported.stdout
    with zipfile.ZipFile(tmp_path / "mine.zip") as archive:
        assert "README.md" in archive.namelist()
        (account,) = json.loads(archive.read("auth/account.json"))
    assert account["email"] == email

    # The wrong password deletes nothing; the right one ends the session and this device's copies.
    one_line_error(cli("account", "delete", "--yes", password="not-the-password"), "not allowed")
    assert cli("me").returncode == 0
    offline_store = tmp_path / "data" / "offline.db"
    offline_store.parent.mkdir(parents=True, exist_ok=True)
    offline_store.write_bytes(b"an offline store")
    deleted = cli("account", "delete", "--yes", password=password)
    assert deleted.returncode == 0, deleted.stderr
    assert f"Deleted the account {email}" in deleted.stdout
    assert not (tmp_path / "token").exists() and not offline_store.exists()
    one_line_error(cli("login", email, password=password), "wrong email or password")
