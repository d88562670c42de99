"""The SDK's offline manager (offline downloads: docs/architecture.md, decision 8).

Downloads a track's encrypted audio and its license into SQLite, verifies the license before
every play, decrypts chunk by chunk while playing, and renews licenses when online.

It reads the formats of ``sdk/offline_format.py`` (which playback_svc writes with the same
module), on ``cryptography``'s primitives only:

* the device's X25519 key pair is made on first use and kept in the database; the public half is
  registered with the service, the private half unwraps content keys and never leaves the device;
* a license is trusted only if its Ed25519 signature verifies under a key of the set the service
  publishes (``ListOfflineSigningKeys``, fetched over the signed-in TLS channel when a license
  names a key not yet known, and kept in the database for offline play), or of a set pinned by the
  app (``trusted_keys``), and it names this user, this device and the track. A rotation needs
  nothing of the app: the new key is fetched the first time a license names it, and licenses
  signed by the previous key keep verifying while the service still lists it;
* audio is decrypted per chunk (AES-256-GCM, each chunk authenticated before it is yielded).

Usage::

    with MeshClient("http://127.0.0.1:8080", token=token) as client:
        offline = OfflineManager("offline.db", client, user_id=me, device_id="car-1")
        offline.register("My car", "automobile")
        offline.download_playlist(playlist_id)
        for chunk in offline.play(track_id):   # later, offline
            decoder.feed(chunk)
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from spotify.library.v1 import library_pb2
from spotify.playback.v1 import playback_pb2

from sdk.offline_format import OfflineError, decrypt_chunks, license_bytes, read_header, unwrap_key

__all__ = ["OfflineError", "OfflineManager", "decrypt_chunks", "license_bytes", "read_header", "unwrap_key"]

RENEW_WITHIN_S = 7 * 24 * 3600  # renew licenses that expire within a week when online
PLAYLIST_DAYS = 30

Fetch = Callable[[str], Iterable[bytes]]
# on_progress(done, total) of a playlist download.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DownloadedPlaylist:
    playlist_id: str
    track_ids: list[str]
    downloaded_at: float
    expires_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS device (device_id TEXT PRIMARY KEY, private_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    track_id TEXT PRIMARY KEY,
    license BLOB NOT NULL,
    audio BLOB NOT NULL,
    quality_kbps INTEGER NOT NULL,
    downloaded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (key_id TEXT PRIMARY KEY, public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS playlists (
    playlist_id TEXT PRIMARY KEY,
    track_ids TEXT NOT NULL,
    downloaded_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


def _http_fetch(url: str) -> Iterator[bytes]:
    with httpx.stream("GET", url, timeout=30) as reply:
        reply.raise_for_status()
        yield from reply.iter_bytes(256 * 1024)


# The service's refusals, as stable reasons: (status, a word of its message) -> reason.
_REFUSALS: tuple[tuple[grpc.StatusCode, str, str], ...] = (
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "devices", "device_limit"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "downloads", "track_limit"),
    (grpc.StatusCode.PERMISSION_DENIED, "another device", "wrong_device"),
    (grpc.StatusCode.PERMISSION_DENIED, "premium", "not_premium"),
    (grpc.StatusCode.NOT_FOUND, "not registered", "not_registered"),
    (grpc.StatusCode.FAILED_PRECONDITION, "revoked", "revoked"),
)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals of offline operations as OfflineError (other failures pass)."""
    try:
        yield
    except grpc.RpcError as err:
        code, details = err.code(), err.details() or ""  # type: ignore[attr-defined]
        for status, word, reason in _REFUSALS:
            if code == status and word in details:
                raise OfflineError(reason, details) from err
        raise


# ---- the manager -----------------------------------------------------------------------------


class OfflineManager:
    """Offline tracks of one signed-in user on one device, in a SQLite file.

    ``client`` needs ``playback`` (and, for playlists, ``library``) stubs: a ``MeshClient``.
    ``fetch(url)`` yields the download's bytes (default: HTTP GET). ``clock`` is unix seconds.
    ``trusted_keys`` pins the license-signing keys; by default the published set is trusted.
    """

    def __init__(
        self,
        db_path: str,
        client: Any,
        *,
        user_id: str,
        device_id: str,
        trusted_keys: Mapping[str, bytes] | None = None,
        fetch: Fetch = _http_fetch,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.device_id = device_id
        self.fetch = fetch
        self.clock = clock
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.db.executescript(_SCHEMA)
        self._private = self._device_key()
        self.pinned = trusted_keys is not None
        self.trusted = self._keys(trusted_keys if trusted_keys is not None else self._stored_keys())

    def close(self) -> None:
        self.db.close()

    def _device_key(self) -> X25519PrivateKey:
        row = self.db.execute(
            "SELECT private_key FROM device WHERE device_id = ?", (self.device_id,)
        ).fetchone()
        if row is not None:
            return X25519PrivateKey.from_private_bytes(row[0])
        key = X25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        with self.db:
            self.db.execute(
                "INSERT INTO device (device_id, private_key) VALUES (?, ?)", (self.device_id, raw)
            )
        return key

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    # ---- online operations ----------------------------------------------------------------

    def register(self, name: str, device_type: str) -> playback_pb2.OfflineDevice:
        """Register this device (idempotent: the server keys devices by user and device id)."""
        with _refusals():
            return self.client.playback.RegisterOfflineDevice(
                playback_pb2.RegisterOfflineDeviceRequest(
                    request_id=uuid.uuid4().hex,
                    device_id=self.device_id,
                    name=name,
                    device_type=device_type,
                    public_key=self.public_key,
                )
            )

    def download_track(self, track_id: str, quality: str = "high") -> playback_pb2.OfflineLicense:
        """Download (or refresh) one track; an existing download with a healthy license is kept.

        A stored license that no longer verifies (tampered with, or signed in an older format) is
        replaced, so going online heals it.
        """
        existing = self._stored(track_id)
        if existing is not None:
            license = playback_pb2.OfflineLicense.FromString(existing[0])
            if license.expires_at.seconds - self.clock() > RENEW_WITHIN_S and self._verifies(
                license, track_id
            ):
                return license
        with _refusals():
            reply = self.client.playback.CreateOfflineDownload(
                playback_pb2.CreateOfflineDownloadRequest(
                    request_id=uuid.uuid4().hex, track_id=track_id, device_id=self.device_id, quality=quality
                )
            )
        license = reply.license
        self._verify_online(license, track_id)
        with self.db:
            cursor = self.db.execute(
                "INSERT OR REPLACE INTO tracks (track_id, license, audio, quality_kbps, downloaded_at)"
                " VALUES (?, ?, zeroblob(?), ?, ?)",
                (
                    license.track_id,
                    license.SerializeToString(),
                    reply.size_bytes,
                    reply.quality_kbps,
                    self.clock(),
                ),
            )
            written = 0
            assert cursor.lastrowid is not None
            with self.db.blobopen("tracks", "audio", cursor.lastrowid) as blob:
                for chunk in self.fetch(reply.download_url):
                    if written + len(chunk) > reply.size_bytes:
                        raise OfflineError("tampered", "the download is larger than announced")
                    blob.write(chunk)
                    written += len(chunk)
                if written != reply.size_bytes:
                    raise OfflineError(
                        "tampered", f"the download ended after {written} of {reply.size_bytes} bytes"
                    )
                blob.seek(0)
                if read_header(blob)[3] != license.key_id:  # type: ignore[arg-type]
                    raise OfflineError("tampered", "the audio was encrypted under another key")
        return license

    def download_playlist(
        self, playlist_id: str, quality: str = "high", on_progress: Progress | None = None
    ) -> list[str]:
        """Download every track of a playlist and remember it for 30 days (a license's lifetime);
        `on_progress(done, total)` after each track. Run again (or `renew`) to sync it."""
        track_ids: list[str] = []
        offset = 0
        while True:
            page = self.client.library.ListPlaylistItems(
                library_pb2.ListPlaylistItemsRequest(id=playlist_id, limit=100, offset=offset)
            )
            track_ids += [item.item.id for item in page.items if item.item.id]
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        for done, track_id in enumerate(track_ids, start=1):
            self.download_track(track_id, quality)
            if on_progress is not None:
                on_progress(done, len(track_ids))
        now = self.clock()
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO playlists (playlist_id, track_ids, downloaded_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (playlist_id, json.dumps(track_ids), now, now + PLAYLIST_DAYS * 86_400),
            )
        return track_ids

    def renew(self) -> int:
        """Online: sync every downloaded playlist (its tracks now, 30 more days) and renew every
        license that expires within a week; returns how many licenses were renewed."""
        for (playlist_id,) in self.db.execute("SELECT playlist_id FROM playlists").fetchall():
            self.download_playlist(playlist_id)
        renewed = 0
        rows = self.db.execute("SELECT track_id, license FROM tracks").fetchall()
        for track_id, raw in rows:
            license = playback_pb2.OfflineLicense.FromString(raw)
            if license.expires_at.seconds - self.clock() > RENEW_WITHIN_S:
                continue
            with _refusals():
                fresh = self.client.playback.RenewOfflineLicense(
                    playback_pb2.RenewOfflineLicenseRequest(
                        license_id=license.license_id, device_id=self.device_id, request_id=uuid.uuid4().hex
                    )
                )
            self._verify_online(fresh, track_id)
            with self.db:
                self.db.execute(
                    "UPDATE tracks SET license = ? WHERE track_id = ?", (fresh.SerializeToString(), track_id)
                )
            renewed += 1
        return renewed

    def remove(self, track_id: str) -> None:
        """Give the slot back to the server (revokes the license) and delete the local copy."""
        stored = self._stored(track_id)
        if stored is None:
            return
        license = playback_pb2.OfflineLicense.FromString(stored[0])
        self.client.playback.DeleteOfflineDownload(
            playback_pb2.DeleteOfflineDownloadRequest(license_id=license.license_id)
        )
        with self.db:
            self.db.execute("DELETE FROM tracks WHERE track_id = ?", (track_id,))

    # ---- offline operations ---------------------------------------------------------------

    @staticmethod
    def _keys(raw: Mapping[str, bytes]) -> dict[str, Ed25519PublicKey]:
        return {kid: Ed25519PublicKey.from_public_bytes(bytes(key)) for kid, key in raw.items()}

    def _stored_keys(self) -> dict[str, bytes]:
        return dict(self.db.execute("SELECT key_id, public_key FROM signing_keys").fetchall())

    def refresh_keys(self) -> list[str]:
        """Trust the key set the service publishes now (kept for offline play); its key ids."""
        published = self.client.playback.ListOfflineSigningKeys(playback_pb2.ListOfflineSigningKeysRequest())
        keys = {key.key_id: bytes(key.public_key) for key in published.keys}
        trusted = self._keys(keys)  # a malformed key fails here, before anything is replaced
        with self.db:
            self.db.execute("DELETE FROM signing_keys")
            self.db.executemany("INSERT INTO signing_keys (key_id, public_key) VALUES (?, ?)", keys.items())
        self.trusted = trusted
        return list(keys)

    def _verify_online(self, license: playback_pb2.OfflineLicense, track_id: str) -> None:
        """`verify`, fetching the published keys first when the license names one not yet known."""
        if not self.pinned and license.signing_key_id not in self.trusted:
            self.refresh_keys()
        self.verify(license, track_id)

    def verify(self, license: playback_pb2.OfflineLicense, track_id: str) -> None:
        """Raise OfflineError unless the license is signed by a trusted key, names this user,
        device and track, and has not expired."""
        key = self.trusted.get(license.signing_key_id)
        if key is None:
            raise OfflineError("bad_license", f"unknown signing key {license.signing_key_id!r}")
        try:
            key.verify(license.signature, license_bytes(license))
        except InvalidSignature as exc:
            raise OfflineError("bad_license", "the license signature does not verify") from exc
        if (license.user_id, license.device_id, license.track_id) != (self.user_id, self.device_id, track_id):
            raise OfflineError("bad_license", "the license is for another user, device or track")
        if license.expires_at.seconds <= self.clock():
            raise OfflineError("expired", "the license has expired: go online to renew it")

    def _verifies(self, license: playback_pb2.OfflineLicense, track_id: str) -> bool:
        try:
            self.verify(license, track_id)
        except OfflineError:
            return False
        return True

    def play(self, track_id: str) -> Iterator[bytes]:
        """Plaintext Ogg Vorbis, chunk by chunk; the license (and, for a track downloaded with
        playlists, that one of them is still within its 30 days) is checked before the first byte."""
        stored = self._stored(track_id)
        if stored is None:
            raise OfflineError("not_downloaded", f"track {track_id} is not downloaded")
        license = playback_pb2.OfflineLicense.FromString(stored[0])
        self.verify(license, track_id)
        held = [p for p in self.playlists() if track_id in p.track_ids]
        if held and all(p.expires_at <= self.clock() for p in held):
            names = ", ".join(p.playlist_id for p in held)
            raise OfflineError(
                "expired", f"playlist {names} was downloaded over 30 days ago: go online to renew"
            )
        key = unwrap_key(license.content_key, self._private)
        return self._decrypt(stored[1], key)

    def _decrypt(self, rowid: int, key: bytes) -> Iterator[bytes]:
        with self.db.blobopen("tracks", "audio", rowid, readonly=True) as blob:
            yield from decrypt_chunks(blob, key)  # type: ignore[arg-type]

    # The seed's name for it.
    play_offline = play

    def playlists(self) -> list[DownloadedPlaylist]:
        """The downloaded playlists, with when each must be synced online again."""
        rows = self.db.execute(
            "SELECT playlist_id, track_ids, downloaded_at, expires_at FROM playlists"
        ).fetchall()
        return [DownloadedPlaylist(pid, json.loads(tids), at, until) for pid, tids, at, until in rows]

    def tracks(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT track_id FROM tracks ORDER BY downloaded_at")]

    def _stored(self, track_id: str) -> tuple[bytes, int] | None:
        row = self.db.execute("SELECT license, rowid FROM tracks WHERE track_id = ?", (track_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None
