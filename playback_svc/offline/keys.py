"""The server's offline key material, from ``PLAYBACK_OFFLINE_*`` settings.

* master secret: derives every per-track content key (HKDF); never leaves the server.
* signing keys: ``"kid1:<base64 32-byte Ed25519 seed>,kid2:..."``; the first signs new licenses,
  all are listed as trusted so licenses signed before a rotation keep verifying until they expire.
  Clients pin the public keys (:meth:`OfflineKeys.public_keys`), distributed with the app.

The defaults are development-only values (like the media signing key's), derived from fixed labels.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from playback_svc.offline.crypto import public_bytes

DEV_MASTER = "local-development-only-offline-master-secret"
DEV_SIGNING = (
    "dev-ed1:"
    + base64.b64encode(hashlib.sha256(b"local-development-only-offline-license-key").digest()).decode()
)


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
        return {kid: public_bytes(key.public_key()) for kid, key in self.signing}
