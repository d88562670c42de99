"""The offline formats, server side. Only ``cryptography``'s primitives are used; nothing here
invents a cipher, it only fixes how standard ones are composed (and ``sdk/offline.py`` reads it).

Encrypted audio file (``.spenc``)::

    header = b"SPMOFF01" | chunk_size (u32 BE) | salt (8 random bytes) | len(key_id) (u16 BE) | key_id
    chunk i = AES-256-GCM(content_key, nonce = salt | i (u32 BE),
                          plaintext = audio[i*chunk_size : (i+1)*chunk_size],
                          aad = header | i (u32 BE) | last (1 byte: 1 on the final chunk, else 0))

Every chunk carries its own 16-byte tag, so a player decrypts and verifies chunk by chunk while
it plays; the index and the "last" flag in the AAD stop chunks being reordered, dropped or the file
truncated at a chunk boundary. The random salt makes nonces unique even if a file is re-encrypted
under the same key.

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
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spotify.playback.v1 import playback_pb2

MAGIC = b"SPMOFF01"
DEFAULT_CHUNK_SIZE = 64 * 1024
KEY_BYTES = 32
_WRAP_INFO = b"spotify-mesh/offline-key-wrap/v1"
_CONTENT_INFO = b"spotify-mesh/offline-content-key/v1:"
_LICENSE_LABEL = "spotify-mesh/offline-license/v1"


class OfflineFormatError(ValueError):
    """Input that cannot be used: a malformed device key or license field."""


def derive_content_key(master: bytes, key_id: str) -> bytes:
    """The per-track content key: HKDF-SHA256 of the server's master secret, labelled by key id.

    Derived rather than stored, so no table of raw keys exists to leak; rotating the master (and
    the key id's version) re-keys every track.
    """
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_CONTENT_INFO + key_id.encode()
    ).derive(master)


def header(chunk_size: int, salt: bytes, key_id: str) -> bytes:
    raw_kid = key_id.encode()
    return MAGIC + struct.pack(">I", chunk_size) + salt + struct.pack(">H", len(raw_kid)) + raw_kid


def _aad(head: bytes, index: int, last: bool) -> bytes:
    return head + struct.pack(">IB", index, 1 if last else 0)


def encrypt_file(
    source: BinaryIO, target: BinaryIO, key: bytes, key_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Encrypt ``source`` into ``target`` chunk by chunk (never all of it in memory); returns the size."""
    salt = os.urandom(8)
    head = header(chunk_size, salt, key_id)
    aead = AESGCM(key)
    target.write(head)
    written = len(head)
    index = 0
    chunk = source.read(chunk_size)
    while True:
        following = source.read(chunk_size)
        last = not following
        sealed = aead.encrypt(salt + struct.pack(">I", index), chunk, _aad(head, index, last))
        target.write(sealed)
        written += len(sealed)
        if last:
            return written
        chunk, index = following, index + 1


def wrap_key(content_key: bytes, device_public: bytes) -> bytes:
    """The content key encrypted for one device (see the module docstring)."""
    try:
        recipient = X25519PublicKey.from_public_bytes(device_public)
    except ValueError as exc:
        raise OfflineFormatError("device public key must be 32 raw X25519 bytes") from exc
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kek = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=ephemeral_public + device_public, info=_WRAP_INFO
    ).derive(ephemeral.exchange(recipient))
    nonce = os.urandom(12)
    return ephemeral_public + nonce + AESGCM(kek).encrypt(nonce, content_key, device_public)


def license_bytes(license: playback_pb2.OfflineLicense) -> bytes:
    """What the signature covers: every field but the signature, one per line, behind a label."""
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
    if any("\n" in field for field in fields):
        raise OfflineFormatError("license fields must not contain newlines")
    return "\n".join(fields).encode()


def sign_license(license: playback_pb2.OfflineLicense, key: Ed25519PrivateKey, key_id: str) -> None:
    license.signing_key_id = key_id
    license.signature = key.sign(license_bytes(license))


def public_bytes(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
