"""Signed media URLs: playback_svc signs them, media_svc verifies them.

A stream URL is a bearer capability: whoever holds it may fetch that one file until it
expires. The signature binds the four things that must not be changed by the holder:

* the path (so a URL for the 160 kbps file cannot be re-pointed at the 320 kbps file or
  another track: the quality is part of the path),
* the expiry (so it cannot be extended),
* the user id (so streams stay attributed to the user they were issued to),
* the key id (so the verifier knows which key to use and a key can be retired).

The MAC is HMAC-SHA256 from the standard library over a canonical string (one field per line,
behind a version label), encoded as unpadded base64url in the ``sig`` query parameter next to
``exp``, ``uid`` and ``kid``.

Keys come from ``Settings.media_signing_keys`` ("kid1:secret1,kid2:secret2"). The first key
signs; every key verifies. To rotate, put the new key first and keep the old one after it for at
least the longest TTL you issue: URLs signed with the old key keep working until they expire,
then the old key can be removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode

from meshkit.text import has_control_characters

__all__ = [
    "DEFAULT_TTL_S",
    "KeyRing",
    "SignatureError",
    "SignatureErrorReason",
    "SignedClaims",
    "canonical_string",
    "default_keyring",
    "sign",
    "verify",
]

DEFAULT_TTL_S = 3600

# Bumped if the canonical string ever changes, so an old signature can never be read as a new one.
_CANONICAL_VERSION = "spotify-mesh/media-url/v1"
# Key ids travel in URLs and logs: keep them short and boring.
_KID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Unix seconds, ASCII digits only (int() would also accept "٣" or " 12 ").
_EXP_RE = re.compile(r"[0-9]{1,12}")
# HMAC-SHA256 is 32 bytes: 43 base64url characters without padding.
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_UID_LEN = 128
_SIGNED_PARAMS = ("exp", "uid", "kid", "sig")


class SignatureErrorReason(StrEnum):
    """Why a URL was refused. Stable strings: they end up in logs and metrics labels."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


class SignatureError(Exception):
    """A signed URL did not verify; ``reason`` says why (the HTTP answer is 403 for every reason)."""

    def __init__(self, reason: SignatureErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class SignedClaims:
    """What a verified URL vouches for."""

    path: str
    user_id: str
    expires_at: int
    key_id: str

    def seconds_left(self, now: float | None = None) -> int:
        """Seconds until expiry (never negative): what a cache may keep the response for."""
        now = time.time() if now is None else now
        return max(0, self.expires_at - int(now))


class KeyRing:
    """The HMAC keys, in order: the first signs, all verify.

    Secrets are kept out of ``repr`` so a ring that ends up in a log line or a traceback does not
    leak them.
    """

    __slots__ = ("_keys", "_signing_kid")

    def __init__(self, keys: Iterable[tuple[str, bytes | str]]) -> None:
        ordered: dict[str, bytes] = {}
        for kid, secret in keys:
            if not _KID_RE.fullmatch(kid):
                raise ValueError(f"invalid media signing key id {kid!r}: use 1-64 of [A-Za-z0-9._-]")
            if kid in ordered:
                raise ValueError(f"duplicate media signing key id {kid!r}")
            raw = secret.encode() if isinstance(secret, str) else bytes(secret)
            if not raw:
                raise ValueError(f"empty secret for media signing key id {kid!r}")
            ordered[kid] = raw
        if not ordered:
            raise ValueError("a media signing key ring needs at least one key")
        self._keys = ordered
        self._signing_kid = next(iter(ordered))

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse ``"kid1:secret1,kid2:secret2"`` (the settings format).

        The secret is everything after the first ``:`` so it may itself contain colons; blanks
        around entries are ignored; empty entries (a trailing comma) are skipped.
        """
        pairs: list[tuple[str, str]] = []
        for entry in spec.split(","):
            entry = entry.strip()
            if not entry:
                continue
            kid, sep, secret = entry.partition(":")
            if not sep:
                raise ValueError("media signing keys must look like 'kid1:secret1,kid2:secret2'")
            pairs.append((kid.strip(), secret.strip()))
        return cls(pairs)

    @property
    def signing_kid(self) -> str:
        """The key id new URLs are signed with."""
        return self._signing_kid

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id that verifies, signing key first."""
        return tuple(self._keys)

    def secret(self, kid: str) -> bytes | None:
        """The secret of ``kid``, or None when the ring does not hold it."""
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:
        return f"KeyRing(kids={list(self._keys)!r})"


@lru_cache(maxsize=4)
def _parse_cached(spec: str) -> KeyRing:
    return KeyRing.parse(spec)


def default_keyring() -> KeyRing:
    """The ring from ``Settings.media_signing_keys``, parsed once per distinct value."""
    from meshkit.config import get_settings  # late: keep this module importable without settings

    return _parse_cached(get_settings().media_signing_keys)


def canonical_string(path: str, expires_at: int, user_id: str, key_id: str) -> str:
    """The exact text that is MACed: a version label and one field per line.

    Fields are separated by newlines and none may contain one (checked by the callers), so two
    different tuples can never produce the same string.
    """
    return "\n".join((_CANONICAL_VERSION, path, str(expires_at), user_id, key_id))


def _mac(secret: bytes, path: str, expires_at: int, user_id: str, key_id: str) -> str:
    digest = hmac.new(
        secret, canonical_string(path, expires_at, user_id, key_id).encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_path(path: str) -> str | None:
    """Return why ``path`` cannot be signed, or None when it can."""
    if not path.startswith("/"):
        return "path must be absolute (start with '/')"
    if has_control_characters(path):
        return "path must not contain control characters"
    return None


def _check_uid(user_id: str) -> str | None:
    if not user_id:
        return "user id is empty"
    if len(user_id) > _MAX_UID_LEN:
        return "user id is too long"
    if has_control_characters(user_id):
        return "user id must not contain control characters"
    return None


def sign(
    path: str,
    user_id: str,
    ttl_s: int = DEFAULT_TTL_S,
    now: float | None = None,
    *,
    keyring: KeyRing | None = None,
) -> str:
    """Sign ``path`` for ``user_id``; return ``path?exp=…&uid=…&kid=…&sig=…`` (percent-encoded).

    ``path`` is the URL path the client will request, unencoded, e.g.
    ``/media/tracks/<id>_160kbps.ogg``; prefix the result with the public base URL.
    ``now`` (unix seconds) is for tests; the expiry is ``now + ttl_s`` rounded down to a second.
    ``keyring`` defaults to the one from settings.
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if problem := _check_path(path) or _check_uid(user_id):
        raise ValueError(problem)
    ring = keyring if keyring is not None else default_keyring()
    kid = ring.signing_kid
    secret = ring.secret(kid)
    assert secret is not None  # the signing kid is always in the ring
    expires_at = int(time.time() if now is None else now) + int(ttl_s)
    sig = _mac(secret, path, expires_at, user_id, kid)
    query = urlencode({"exp": expires_at, "uid": user_id, "kid": kid, "sig": sig})
    return f"{quote(path, safe='/')}?{query}"


def _single_params(query: str) -> dict[str, str]:
    """The signed parameters of a raw query string, refusing duplicates (parameter confusion)."""
    seen: dict[str, str] = {}
    try:
        pairs = parse_qsl(query.removeprefix("?"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignatureError(SignatureErrorReason.MALFORMED, "query string is not valid") from exc
    for name, value in pairs:
        if name not in _SIGNED_PARAMS:
            continue
        if name in seen:
            raise SignatureError(SignatureErrorReason.MALFORMED, f"query parameter {name!r} is repeated")
        seen[name] = value
    return seen


def verify(
    path: str,
    query: str,
    now: float | None = None,
    *,
    keyring: KeyRing | None = None,
) -> SignedClaims:
    """Check a signed URL; return its claims or raise :class:`SignatureError`.

    ``path`` is the decoded request path (what :func:`sign` was given); ``query`` is the raw query
    string (with or without the leading ``?``). Checks run in this order: shape (malformed), key
    id (unknown_key), MAC in constant time (bad_signature), then expiry (expired) — so "expired"
    is only ever said about a URL we really issued. A URL is valid while ``now < exp``.
    """
    params = _single_params(query)
    missing = [name for name in _SIGNED_PARAMS if not params.get(name)]
    if missing:
        raise SignatureError(
            SignatureErrorReason.MALFORMED, f"missing query parameter(s): {', '.join(missing)}"
        )
    exp_raw, uid, kid, sig = (params[name] for name in _SIGNED_PARAMS)
    if not _EXP_RE.fullmatch(exp_raw):
        raise SignatureError(SignatureErrorReason.MALFORMED, "exp must be unix seconds")
    if not _SIG_RE.fullmatch(sig):
        raise SignatureError(SignatureErrorReason.MALFORMED, "sig must be 43 base64url characters")
    if not _KID_RE.fullmatch(kid):
        raise SignatureError(SignatureErrorReason.MALFORMED, "kid is not a valid key id")
    if problem := _check_path(path) or _check_uid(uid):
        raise SignatureError(SignatureErrorReason.MALFORMED, problem)

    ring = keyring if keyring is not None else default_keyring()
    secret = ring.secret(kid)
    if secret is None:
        raise SignatureError(SignatureErrorReason.UNKNOWN_KEY, "unknown signing key")
    expires_at = int(exp_raw)
    expected = _mac(secret, path, expires_at, uid, kid)
    # Both strings are ASCII (checked above), so compare_digest takes them as they are.
    if not hmac.compare_digest(expected, sig):
        raise SignatureError(SignatureErrorReason.BAD_SIGNATURE, "signature does not match")
    current = time.time() if now is None else now
    if current >= expires_at:
        raise SignatureError(SignatureErrorReason.EXPIRED, "URL has expired")
    return SignedClaims(path=path, user_id=uid, expires_at=expires_at, key_id=kid)
