"""Offline licenses as the server issues them: its key material, the content keys derived from it,
and the license a device gets, signed.

The byte formats (the encrypted file, the key wrap, what a signature covers) are
``sdk.offline_format``'s, shared with the app; what is only the server's lives here:

* the master secret derives every per-track content key (HKDF); it never leaves the server.
* signing keys, ``"kid1:<base64 32-byte Ed25519 seed>,kid2:..."``: the first signs new licenses;
  all are listed as trusted, so licenses signed before a rotation keep verifying until they
  expire. Clients trust the public keys the service publishes (:meth:`OfflineKeys.public_keys`,
  served by ListOfflineSigningKeys), or pin them in the app.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Base64Bytes
from spotify.playback.v1 import playback_pb2

from sdk import offline_format

_CONTENT_INFO = b"spotify-mesh/offline-content-key/v1:"


def derive_content_key(master: bytes, key_id: str) -> bytes:
    """The per-track content key: HKDF-SHA256 of the server's master secret, labelled by key id.

    Derived rather than stored, so no table of raw keys exists to leak; rotating the master (and
    the key id's version) re-keys every track.
    """
    return HKDF(
        algorithm=hashes.SHA256(),
        length=offline_format.KEY_BYTES,
        salt=None,
        info=_CONTENT_INFO + key_id.encode(),
    ).derive(master)


@dataclass(frozen=True)
class License:
    """One track on one device until ``expires_at``; ``content_key`` is wrapped for that device."""

    license_id: str
    user_id: str
    device_id: str
    track_id: str
    key_id: str
    # Base64 where it is stored as JSON (an idempotent answer), like the signature.
    content_key: Base64Bytes
    chunk_size: int
    issued_at: datetime
    expires_at: datetime
    signing_key_id: str = ""
    signature: Base64Bytes = b""


def license_message(license: License) -> playback_pb2.OfflineLicense:
    """The license as the app stores and verifies it: the signature covers this message's fields.

    The message's fields are the license's, by name; only the two times change type.
    """
    fields = dataclasses.asdict(license)
    issued_at, expires_at = fields.pop("issued_at"), fields.pop("expires_at")
    message = playback_pb2.OfflineLicense(**fields)
    message.issued_at.FromDatetime(issued_at)
    message.expires_at.FromDatetime(expires_at)
    return message


@dataclass(frozen=True)
class OfflineKeys:
    master: bytes
    signing: tuple[tuple[str, Ed25519PrivateKey], ...]

    @classmethod
    def parse(cls, master: str, signing: str) -> OfflineKeys:
        if not master:
            raise ValueError("the offline master secret must not be empty")
        keys = []
        for entry in signing.split(","):
            if not entry.strip():
                continue
            kid, sep, seed = entry.strip().partition(":")
            if not sep:
                raise ValueError("offline signing keys must look like 'kid:<base64 seed>,...'")
            raw = base64.b64decode(seed)
            if len(raw) != 32:
                raise ValueError(f"offline signing key {kid!r} must be a 32-byte Ed25519 seed")
            keys.append((kid, Ed25519PrivateKey.from_private_bytes(raw)))
        if not keys:
            raise ValueError("at least one offline signing key is required")
        return cls(master.encode(), tuple(keys))

    @property
    def signer(self) -> tuple[str, Ed25519PrivateKey]:
        return self.signing[0]

    def public_keys(self) -> dict[str, bytes]:
        """Key id → raw Ed25519 public key: what clients trust."""
        return {kid: offline_format.public_bytes(key.public_key()) for kid, key in self.signing}

    def content_key(self, key_id: str) -> bytes:
        return derive_content_key(self.master, key_id)

    def sign(self, license: License) -> License:
        """The license signed by the current signing key."""
        kid, key = self.signer
        unsigned = dataclasses.replace(license, signing_key_id=kid, signature=b"")
        signature = key.sign(offline_format.license_bytes(license_message(unsigned)))
        return dataclasses.replace(unsigned, signature=signature)
