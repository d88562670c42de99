"""The SDK's offline manager (ARCHITECTURE decision 8, the seed's "Offline Sync").

Downloads a track's encrypted audio and its license into SQLite, verifies the license before
every play, decrypts chunk by chunk while playing, and renews licenses when online.

It implements the client half of the formats in ``playback_svc/offline/crypto.py`` (kept apart
on purpose: an SDK ships without server code), on ``cryptography``'s primitives only:

* the device's X25519 key pair is made on first use and kept in the database; the public half is
  registered with the service, the private half unwraps content keys and never leaves the device;
* a license is trusted only if its Ed25519 signature verifies under a pinned server key
  (``trusted_keys``, shipped with the app) and it names this user, this device and the track;
* audio is decrypted per chunk (AES-256-GCM, each chunk authenticated before it is yielded).

Usage::

    with MeshClient(token=token) as client:
        offline = OfflineManager("offline.db", client, user_id=me, device_id="car-1",
                                 trusted_keys={"dev-ed1": server_public_key})
        offline.register("My car", "automobile")
        offline.download_playlist(playlist_id)
        for chunk in offline.play(track_id):   # later, offline
            decoder.feed(chunk)
"""

from __future__ import annotations

import base64
import json
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spotify.library.v1 import library_pb2
from spotify.playback.v1 import playback_pb2

MAGIC = b"SPMOFF01"
TAG_BYTES = 16
_WRAP_INFO = b"spotify-mesh/offline-key-wrap/v1"
_LICENSE_LABEL = "spotify-mesh/offline-license/v1"
RENEW_WITHIN_S = 7 * 24 * 3600  # renew licenses that expire within a week when online
PLAYLIST_DAYS = 30

Fetch = Callable[[str], Iterable[bytes]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device (device_id TEXT PRIMARY KEY, private_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    track_id TEXT PRIMARY KEY,
    license BLOB NOT NULL,
    audio BLOB NOT NULL,
    quality_kbps INTEGER NOT NULL,
    downloaded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playlists (
    playlist_id TEXT PRIMARY KEY,
    track_ids TEXT NOT NULL,
    downloaded_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


class OfflineError(Exception):
    """Why a track cannot be played offline; ``reason`` is stable for UIs and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# ---- the client half of the formats ----------------------------------------------------------


def license_bytes(license: playback_pb2.OfflineLicense) -> bytes:
    """What the server signed (see playback_svc/offline/crypto.py)."""
    fields = (
        _LICENSE_LABEL,
        license.license_id,
        license.user_id,
        license.device_id,
        license.track_id,
        license.key_id,
        base64.b64encode(license.content_key).decode(),
        str(license.chunk_size),
        str(license.issued_at.seconds),
        str(license.expires_at.seconds),
        license.signing_key_id,
    )
    return "\n".join(fields).encode()


def unwrap_key(wrapped: bytes, device_private: X25519PrivateKey) -> bytes:
    if len(wrapped) < 32 + 12 + TAG_BYTES:
        raise OfflineError("bad_license", "the wrapped content key is too short")
    ephemeral_public, nonce, sealed = wrapped[:32], wrapped[32:44], wrapped[44:]
    device_public = device_private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    shared = device_private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    kek = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + device_public, info=_WRAP_INFO
    ).derive(shared)
    try:
        return AESGCM(kek).decrypt(nonce, sealed, device_public)
    except InvalidTag as exc:
        raise OfflineError("bad_license", "the content key was not wrapped for this device") from exc


def read_header(stream: BinaryIO) -> tuple[bytes, int, bytes, str]:
    """(header bytes, chunk size, salt, key id) of an encrypted file."""
    fixed = stream.read(len(MAGIC) + 14)
    if len(fixed) < len(MAGIC) + 14 or not fixed.startswith(MAGIC):
        raise OfflineError("tampered", "not an encrypted offline audio file")
    (chunk_size,) = struct.unpack_from(">I", fixed, len(MAGIC))
    salt = fixed[len(MAGIC) + 4 : len(MAGIC) + 12]
    (kid_len,) = struct.unpack_from(">H", fixed, len(MAGIC) + 12)
    raw_kid = stream.read(kid_len)
    if len(raw_kid) != kid_len or not 0 < chunk_size <= 16 * 1024 * 1024:
        raise OfflineError("tampered", "truncated or malformed header")
    return fixed + raw_kid, chunk_size, salt, raw_kid.decode()


def decrypt_chunks(stream: BinaryIO, key: bytes) -> Iterator[bytes]:
    """Plaintext chunks in order, each authenticated before it is yielded."""
    head, chunk_size, salt, _kid = read_header(stream)
    aead = AESGCM(key)
    index = 0
    sealed = stream.read(chunk_size + TAG_BYTES)
    while True:
        following = stream.read(chunk_size + TAG_BYTES)
        last = not following
        aad = head + struct.pack(">IB", index, 1 if last else 0)
        try:
            yield aead.decrypt(salt + struct.pack(">I", index), sealed, aad)
        except InvalidTag as exc:
            raise OfflineError("tampered", f"chunk {index} failed authentication") from exc
        if last:
            return
        sealed, index = following, index + 1


def _http_fetch(url: str) -> Iterator[bytes]:
    with httpx.stream("GET", url, timeout=30) as reply:
        reply.raise_for_status()
        yield from reply.iter_bytes(256 * 1024)


# ---- the manager -----------------------------------------------------------------------------


class OfflineManager:
    """Offline tracks of one signed-in user on one device, in a SQLite file.

    ``client`` needs ``playback`` (and, for playlists, ``library``) stubs: a ``MeshClient``.
    ``fetch(url)`` yields the download's bytes (default: HTTP GET). ``clock`` is unix seconds.
    """

    def __init__(
        self,
        db_path: str,
        client: Any,
        *,
        user_id: str,
        device_id: str,
        trusted_keys: Mapping[str, bytes],
        fetch: Fetch = _http_fetch,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.device_id = device_id
        self.trusted = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in trusted_keys.items()}
        self.fetch = fetch
        self.clock = clock
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.db.executescript(_SCHEMA)
        self._private = self._device_key()

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
        """Download (or refresh) one track; an existing download with a healthy license is kept."""
        existing = self._stored(track_id)
        if existing is not None:
            license = playback_pb2.OfflineLicense.FromString(existing[0])
            if license.expires_at.seconds - self.clock() > RENEW_WITHIN_S:
                return license
        reply = self.client.playback.CreateOfflineDownload(
            playback_pb2.CreateOfflineDownloadRequest(
                request_id=uuid.uuid4().hex, track_id=track_id, device_id=self.device_id, quality=quality
            )
        )
        license = reply.license
        self.verify(license, track_id)
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

    def download_playlist(self, playlist_id: str, quality: str = "high") -> list[str]:
        """Download every track of a playlist and remember it for 30 days (the seed's rule)."""
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
        for track_id in track_ids:
            self.download_track(track_id, quality)
        now = self.clock()
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO playlists (playlist_id, track_ids, downloaded_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (playlist_id, json.dumps(track_ids), now, now + PLAYLIST_DAYS * 86_400),
            )
        return track_ids

    def renew(self) -> int:
        """Renew every license that expires within a week; returns how many were renewed."""
        renewed = 0
        rows = self.db.execute("SELECT track_id, license FROM tracks").fetchall()
        for track_id, raw in rows:
            license = playback_pb2.OfflineLicense.FromString(raw)
            if license.expires_at.seconds - self.clock() > RENEW_WITHIN_S:
                continue
            fresh = self.client.playback.RenewOfflineLicense(
                playback_pb2.RenewOfflineLicenseRequest(
                    license_id=license.license_id, device_id=self.device_id, request_id=uuid.uuid4().hex
                )
            )
            self.verify(fresh, track_id)
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

    def play(self, track_id: str) -> Iterator[bytes]:
        """Plaintext Ogg Vorbis, chunk by chunk; the license is checked before the first byte."""
        stored = self._stored(track_id)
        if stored is None:
            raise OfflineError("not_downloaded", f"track {track_id} is not downloaded")
        license = playback_pb2.OfflineLicense.FromString(stored[0])
        self.verify(license, track_id)
        key = unwrap_key(license.content_key, self._private)
        return self._decrypt(stored[1], key)

    def _decrypt(self, rowid: int, key: bytes) -> Iterator[bytes]:
        with self.db.blobopen("tracks", "audio", rowid, readonly=True) as blob:
            yield from decrypt_chunks(blob, key)  # type: ignore[arg-type]

    def tracks(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT track_id FROM tracks ORDER BY downloaded_at")]

    def _stored(self, track_id: str) -> tuple[bytes, int] | None:
        row = self.db.execute("SELECT license, rowid FROM tracks WHERE track_id = ?", (track_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None
