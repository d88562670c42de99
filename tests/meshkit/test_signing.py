"""Unit tests of meshkit.signing: pure functions, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

import pytest

from meshkit import signing
from meshkit.signing import (
    KeyRing,
    SignatureError,
    SignatureErrorReason,
    SignedClaims,
    canonical_string,
    sign,
    verify,
)

PATH = "/media/tracks/4uLU6hMCjMI75M1A2tKUQC_160kbps.ogg"
NOW = 1_700_000_000
RING = KeyRing.parse("k1:first-secret,k0:older-secret")


def _split(url: str) -> tuple[str, dict[str, str]]:
    path, _, query = url.partition("?")
    return path, dict(parse_qsl(query))


def _reason(path: str, query: str, now: float = NOW, ring: KeyRing = RING) -> SignatureErrorReason:
    with pytest.raises(SignatureError) as info:
        verify(path, query, now=now, keyring=ring)
    return info.value.reason


def _requery(params: dict[str, str], **changes: str) -> str:
    return urlencode({**params, **changes})


# --- sign --------------------------------------------------------------------------------------


def test_sign_produces_the_four_parameters() -> None:
    url = sign(PATH, "user-1", ttl_s=600, now=NOW, keyring=RING)
    path, params = _split(url)
    assert path == PATH
    assert set(params) == {"exp", "uid", "kid", "sig"}
    assert params["exp"] == str(NOW + 600)
    assert params["uid"] == "user-1"
    assert params["kid"] == "k1"  # the first key signs
    assert len(params["sig"]) == 43 and "=" not in params["sig"]


def test_signature_is_hmac_sha256_over_the_canonical_string() -> None:
    """Pin the wire format so another implementation (or a later refactor) can match it."""
    _, params = _split(sign(PATH, "user-1", ttl_s=600, now=NOW, keyring=RING))
    message = canonical_string(PATH, NOW + 600, "user-1", "k1")
    assert message == f"spotify-mesh/media-url/v1\n{PATH}\n{NOW + 600}\nuser-1\nk1"
    digest = hmac.new(b"first-secret", message.encode(), hashlib.sha256).digest()
    assert params["sig"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_sign_is_deterministic() -> None:
    assert sign(PATH, "u", now=NOW, keyring=RING) == sign(PATH, "u", now=NOW, keyring=RING)


def test_sign_default_ttl_is_an_hour() -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    assert int(params["exp"]) == NOW + 3600


def test_sign_percent_encodes_path_and_uid() -> None:
    url = sign("/media/a b/ü.ogg", "user&x=1", now=NOW, keyring=RING)
    path, params = _split(url)
    assert path == "/media/a%20b/%C3%BC.ogg"
    assert params["uid"] == "user&x=1"
    # The verifier sees the decoded path, as aiohttp's request.path gives it.
    claims = verify("/media/a b/ü.ogg", url.partition("?")[2], now=NOW, keyring=RING)
    assert claims.user_id == "user&x=1"


@pytest.mark.parametrize(
    ("path", "user_id", "ttl_s"),
    [
        ("media/x.ogg", "u", 60),  # relative
        ("/media/x\n.ogg", "u", 60),  # control character
        (PATH, "", 60),  # no user
        (PATH, "a\nb", 60),
        (PATH, "u" * 200, 60),
        (PATH, "u", 0),
        (PATH, "u", -5),
    ],
)
def test_sign_rejects_bad_input(path: str, user_id: str, ttl_s: int) -> None:
    with pytest.raises(ValueError):
        sign(path, user_id, ttl_s=ttl_s, now=NOW, keyring=RING)


# --- verify ------------------------------------------------------------------------------------


def test_round_trip() -> None:
    url = sign(PATH, "user-1", ttl_s=600, now=NOW, keyring=RING)
    claims = verify(PATH, url.partition("?")[2], now=NOW + 10, keyring=RING)
    assert claims == SignedClaims(path=PATH, user_id="user-1", expires_at=NOW + 600, key_id="k1")
    assert claims.seconds_left(NOW + 10) == 590
    assert claims.seconds_left(NOW + 10_000) == 0


def test_query_may_carry_leading_question_mark_and_extra_params() -> None:
    query = sign(PATH, "u", now=NOW, keyring=RING).partition("?")[2]
    assert verify(PATH, "?" + query, now=NOW, keyring=RING).user_id == "u"
    assert verify(PATH, query + "&cachebust=1", now=NOW, keyring=RING).user_id == "u"


def test_expiry_boundary() -> None:
    query = sign(PATH, "u", ttl_s=60, now=NOW, keyring=RING).partition("?")[2]
    verify(PATH, query, now=NOW + 59.999, keyring=RING)
    assert _reason(PATH, query, now=NOW + 60) is SignatureErrorReason.EXPIRED
    assert _reason(PATH, query, now=NOW + 86400) is SignatureErrorReason.EXPIRED


def test_tampered_signature() -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    sig = params["sig"]
    flipped = ("B" if sig[5] == "A" else "A").join((sig[:5], sig[6:]))
    assert _reason(PATH, _requery(params, sig=flipped)) is SignatureErrorReason.BAD_SIGNATURE


def test_changed_path() -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    other = PATH.replace("160kbps", "320kbps")
    assert _reason(other, _requery(params)) is SignatureErrorReason.BAD_SIGNATURE


def test_changed_uid() -> None:
    _, params = _split(sign(PATH, "user-1", now=NOW, keyring=RING))
    assert _reason(PATH, _requery(params, uid="user-2")) is SignatureErrorReason.BAD_SIGNATURE


def test_extended_expiry() -> None:
    _, params = _split(sign(PATH, "u", ttl_s=60, now=NOW, keyring=RING))
    assert _reason(PATH, _requery(params, exp=str(NOW + 999_999))) is SignatureErrorReason.BAD_SIGNATURE


def test_expired_and_tampered_reports_the_tampering() -> None:
    """Expiry is only judged for authentic URLs: 'expired' means "ask for a fresh URL"."""
    _, params = _split(sign(PATH, "user-1", ttl_s=60, now=NOW, keyring=RING))
    assert _reason(PATH, _requery(params, uid="user-2"), now=NOW + 120) is SignatureErrorReason.BAD_SIGNATURE


def test_kid_swapped_to_other_known_key() -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    assert _reason(PATH, _requery(params, kid="k0")) is SignatureErrorReason.BAD_SIGNATURE


def test_unknown_kid() -> None:
    foreign = KeyRing.parse("zz:foreign-secret")
    query = sign(PATH, "u", now=NOW, keyring=foreign).partition("?")[2]
    assert _reason(PATH, query) is SignatureErrorReason.UNKNOWN_KEY


@pytest.mark.parametrize(
    "change",
    [
        {"exp": "12x"},
        {"exp": "-5"},
        {"exp": "١٢٣"},  # Arabic-Indic digits: int() would take them
        {"exp": "9" * 20},
        {"sig": "short"},
        {"sig": "A" * 42 + "="},
        {"sig": "A" * 44},
        {"sig": "+" * 43},
        {"kid": "bad kid!"},
        {"uid": ""},
        {"exp": ""},
    ],
)
def test_malformed_values(change: dict[str, str]) -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    assert _reason(PATH, _requery(params, **change)) is SignatureErrorReason.MALFORMED


@pytest.mark.parametrize("drop", ["exp", "uid", "kid", "sig"])
def test_missing_parameter(drop: str) -> None:
    _, params = _split(sign(PATH, "u", now=NOW, keyring=RING))
    del params[drop]
    assert _reason(PATH, urlencode(params)) is SignatureErrorReason.MALFORMED


def test_repeated_parameter_is_malformed() -> None:
    query = sign(PATH, "user-1", now=NOW, keyring=RING).partition("?")[2]
    assert _reason(PATH, query + "&uid=user-2") is SignatureErrorReason.MALFORMED
    assert _reason(PATH, "uid=user-2&" + query) is SignatureErrorReason.MALFORMED


def test_empty_and_garbage_queries_are_malformed() -> None:
    assert _reason(PATH, "") is SignatureErrorReason.MALFORMED
    assert _reason(PATH, "%ff%fe=1") is SignatureErrorReason.MALFORMED
    assert _reason("relative", sign(PATH, "u", now=NOW, keyring=RING).partition("?")[2]) is (
        SignatureErrorReason.MALFORMED
    )


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    query = sign(PATH, "u", now=NOW, keyring=RING).partition("?")[2]
    verify(PATH, query, now=NOW, keyring=RING)
    assert len(calls) == 1


def test_error_carries_reason_and_message() -> None:
    with pytest.raises(SignatureError) as info:
        verify(PATH, "", now=NOW, keyring=RING)
    assert info.value.reason == "malformed"
    assert "missing" in info.value.message
    assert str(info.value).startswith("malformed: ")


# --- rotation ----------------------------------------------------------------------------------


def test_rotation_keeps_old_urls_valid_until_they_expire() -> None:
    before = KeyRing.parse("k0:older-secret")
    after = KeyRing.parse("k1:first-secret,k0:older-secret")
    old_url = sign(PATH, "u", ttl_s=600, now=NOW, keyring=before)
    assert verify(PATH, old_url.partition("?")[2], now=NOW + 1, keyring=after).key_id == "k0"
    assert _reason(PATH, old_url.partition("?")[2], now=NOW + 600, ring=after) is SignatureErrorReason.EXPIRED
    new_url = sign(PATH, "u", now=NOW, keyring=after)
    assert _split(new_url)[1]["kid"] == "k1"
    # Once the old key is dropped, its URLs stop working.
    retired = KeyRing.parse("k1:first-secret")
    assert _reason(PATH, old_url.partition("?")[2], ring=retired) is SignatureErrorReason.UNKNOWN_KEY


# --- KeyRing -----------------------------------------------------------------------------------


def test_keyring_parse() -> None:
    ring = KeyRing.parse(" a:secret:with:colons , b:two ,")
    assert ring.kids == ("a", "b")
    assert ring.signing_kid == "a"
    assert ring.secret("a") == b"secret:with:colons"
    assert ring.secret("b") == b"two"
    assert ring.secret("c") is None
    assert "b" in ring and "c" not in ring


@pytest.mark.parametrize("spec", ["", " , ", "nocolon", "a:", ":secret", "a:x,a:y", "bad kid:x"])
def test_keyring_parse_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        KeyRing.parse(spec)


def test_keyring_repr_hides_secrets() -> None:
    text = repr(KeyRing.parse("a:super-secret-value"))
    assert "super-secret-value" not in text and "a" in text


def test_keyring_accepts_bytes() -> None:
    ring = KeyRing([("a", b"\x00\x01binary")])
    query = sign(PATH, "u", now=NOW, keyring=ring).partition("?")[2]
    assert verify(PATH, query, now=NOW, keyring=ring).key_id == "a"


def test_default_keyring_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshkit.config import get_settings

    monkeypatch.setenv("MEDIA_SIGNING_KEYS", "env-2:from-the-environment,env-1:older")
    get_settings.cache_clear()
    try:
        ring = signing.default_keyring()
        assert ring.kids == ("env-2", "env-1")
        url = sign(PATH, "u", now=NOW)
        assert _split(url)[1]["kid"] == "env-2"
        assert verify(PATH, url.partition("?")[2], now=NOW).user_id == "u"
    finally:
        get_settings.cache_clear()
