"""The offline download formats, both halves: what playback_svc writes and what the SDK reads.

It lives in the SDK so that an app installs it without any server code; playback_svc imports it
too, so there is one definition of every byte. Only ``cryptography``'s primitives are used:
nothing here invents a cipher, it only fixes how standard ones are composed.

Encrypted audio file (``.spenc``)::

    header = b"SPMOFF01" | chunk_size (u32 BE) | salt (8 random bytes) | len(key_id) (u16 BE) | key_id
    chunk i = AES-256-GCM(content_key, nonce = salt | i (u32 BE),
                          plaintext = audio[i*chunk_size : (i+1)*chunk_size],
                          aad = header | i (u32 BE) | last (1 byte: 1 on the final chunk, else 0))

Every chunk carries its own 16-byte tag, so a player decrypts and verifies chunk by chunk while
it plays; the index and the "last" flag in the AAD stop chunks being reordered, dropped or the
file truncated at a chunk boundary. The random salt makes nonces unique even if a file is
re-encrypted under the same key.

Content key wrap (for one device's X25519 public key)::

    wrapped = ephemeral_public (32) | nonce (12) | AES-256-GCM(kek, nonce, content_key, aad=device_public)
    kek = HKDF-SHA256(X25519(ephemeral_private, device_public),
                      salt = ephemeral_public | device_public, info = "spotify-mesh/offline-key-wrap/v1")

License signature: Ed25519 over :func:`license_bytes`, a versioned line-per-field string.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf import timestamp_pb2
from spotify.playback.v1 import playback_pb2

MAGIC = b"SPMOFF01"
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
KEY_BYTES = 32
TAG_BYTES = 16
_SALT_BYTES = 8
_NONCE_BYTES = 12
_WRAP_INFO = b"spotify-mesh/offline-key-wrap/v1"
# v2 signs the times to the nanosecond: v1 signed whole seconds only, so the nanos of an issued
# license (the server's clock has microseconds) could be edited without the signature noticing.
LICENSE_LABEL = "spotify-mesh/offline-license/v2"


class OfflineError(ValueError):
    """Why offline bytes cannot be used; ``reason`` is stable for UIs and logs.

    Reasons raised here: ``bad_key`` (a malformed device key), ``bad_license`` (a malformed
    license field, or a content key not wrapped for this device) and ``tampered`` (an encrypted
    file that fails its checks); the SDK's offline manager adds its own (``expired``, ...).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def header(chunk_size: int, salt: bytes, key_id: str) -> bytes:
    raw_kid = key_id.encode()
    return MAGIC + struct.pack(">I", chunk_size) + salt + struct.pack(">H", len(raw_kid)) + raw_kid


def _aad(head: bytes, index: int, last: bool) -> bytes:
    return head + struct.pack(">IB", index, 1 if last else 0)


def _nonce(salt: bytes, index: int) -> bytes:
    return salt + struct.pack(">I", index)


def encrypt_file(
    source: BinaryIO, target: BinaryIO, key: bytes, key_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Encrypt ``source`` into ``target`` chunk by chunk (never all of it in memory); returns the size."""
    salt = os.urandom(_SALT_BYTES)
    head = header(chunk_size, salt, key_id)
    aead = AESGCM(key)
    target.write(head)
    written = len(head)
    index = 0
    chunk = source.read(chunk_size)
    while True:
        following = source.read(chunk_size)
        last = not following
        sealed = aead.encrypt(_nonce(salt, index), chunk, _aad(head, index, last))
        target.write(sealed)
        written += len(sealed)
        if last:
            return written
        chunk, index = following, index + 1


def read_header(stream: BinaryIO) -> tuple[bytes, int, bytes, str]:
    """(header bytes, chunk size, salt, key id) of an encrypted file."""
    fixed_length = len(MAGIC) + 4 + _SALT_BYTES + 2
    fixed = stream.read(fixed_length)
    if len(fixed) < fixed_length or not fixed.startswith(MAGIC):
        raise OfflineError("tampered", "not an encrypted offline audio file")
    (chunk_size,) = struct.unpack_from(">I", fixed, len(MAGIC))
    salt = fixed[len(MAGIC) + 4 : len(MAGIC) + 4 + _SALT_BYTES]
    (kid_len,) = struct.unpack_from(">H", fixed, len(MAGIC) + 4 + _SALT_BYTES)
    raw_kid = stream.read(kid_len)
    if len(raw_kid) != kid_len or not 0 < chunk_size <= MAX_CHUNK_SIZE:
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
        try:
            yield aead.decrypt(_nonce(salt, index), sealed, _aad(head, index, last))
        except InvalidTag as exc:
            raise OfflineError("tampered", f"chunk {index} failed authentication") from exc
        if last:
            return
        sealed, index = following, index + 1


def _kek(shared: bytes, ephemeral_public: bytes, device_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=ephemeral_public + device_public, info=_WRAP_INFO
    ).derive(shared)


def wrap_key(content_key: bytes, device_public: bytes) -> bytes:
    """The content key encrypted for one device (see the module docstring)."""
    try:
        recipient = X25519PublicKey.from_public_bytes(device_public)
    except ValueError as exc:
        raise OfflineError("bad_key", "device public key must be 32 raw X25519 bytes") from exc
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_bytes(ephemeral.public_key())
    kek = _kek(ephemeral.exchange(recipient), ephemeral_public, device_public)
    nonce = os.urandom(_NONCE_BYTES)
    return ephemeral_public + nonce + AESGCM(kek).encrypt(nonce, content_key, device_public)


def unwrap_key(wrapped: bytes, device_private: X25519PrivateKey) -> bytes:
    """The content key a device's private key unwraps; ``bad_license`` if it was not wrapped for it."""
    if len(wrapped) < 32 + _NONCE_BYTES + TAG_BYTES:
        raise OfflineError("bad_license", "the wrapped content key is too short")
    ephemeral_public, nonce, sealed = (
        wrapped[:32],
        wrapped[32 : 32 + _NONCE_BYTES],
        wrapped[32 + _NONCE_BYTES :],
    )
    device_public = public_bytes(device_private.public_key())
    kek = _kek(
        device_private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public)),
        ephemeral_public,
        device_public,
    )
    try:
        return AESGCM(kek).decrypt(nonce, sealed, device_public)
    except InvalidTag as exc:
        raise OfflineError("bad_license", "the content key was not wrapped for this device") from exc


def _instant(timestamp: timestamp_pb2.Timestamp) -> str:
    return f"{timestamp.seconds}.{timestamp.nanos:09d}"


def license_bytes(license: playback_pb2.OfflineLicense) -> bytes:
    """What the signature covers: every field but the signature (every part of each time), one
    per line, behind a label."""
    fields = (
        LICENSE_LABEL,
        license.license_id,
        license.user_id,
        license.device_id,
        license.track_id,
        license.key_id,
        base64.b64encode(license.content_key).decode(),
        str(license.chunk_size),
        _instant(license.issued_at),
        _instant(license.expires_at),
        license.signing_key_id,
    )
    if any("\n" in field for field in fields):
        raise OfflineError("bad_license", "license fields must not contain newlines")
    return "\n".join(fields).encode()


def public_bytes(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
