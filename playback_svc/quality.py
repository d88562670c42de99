"""Which quality a stream starts at.

The lowest of three limits:

* what the user asked for: ``low`` 96, ``normal`` 160, ``high`` 320 kbps, or ``auto`` (no limit);
* what the subscription allows: premium 320, free 160;
* what the connection suggests: ``cellular`` with ``auto`` starts at 96 (data saving); an explicit
  quality on cellular is the user's own setting for that network and is honoured (still capped
  by the subscription); ``wifi``/``ethernet``/``unknown`` do not limit. With ``auto`` and a
  client-reported bandwidth, the highest tier that fits in half of it (headroom for the network
  to wobble without a stall).

Then the file: the highest available bitrate at or under that limit, else the lowest the
subscription allows (a track encoded only at 160 still plays on a 96 kbps limit rather than not
at all). A file above the subscription's cap is never handed out.
Pure functions: tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshkit.errors import InvalidArgument
from playback_svc.clients import AudioFile

REQUESTED_KBPS: dict[str, int | None] = {"": None, "auto": None, "low": 96, "normal": 160, "high": 320}
CONNECTIONS = frozenset({"", "unknown", "cellular", "wifi", "ethernet"})
SUBSCRIPTION_CAP_KBPS = {"premium": 320, "free": 160}
CELLULAR_AUTO_KBPS = 96
BANDWIDTH_HEADROOM = 2  # a tier needs twice its bitrate of measured bandwidth
MAX_BANDWIDTH_KBPS = 10_000_000


@dataclass(frozen=True)
class Choice:
    """The file to start with, and the other files the user may switch to mid-track."""

    chosen: AudioFile
    alternatives: tuple[AudioFile, ...]
    limit_kbps: int


def subscription_cap(product: str) -> int:
    return SUBSCRIPTION_CAP_KBPS.get(product, SUBSCRIPTION_CAP_KBPS["free"])


def limit_kbps(quality: str, connection: str, bandwidth_kbps: int, product: str) -> int:
    """The highest bitrate this stream may start at; InvalidArgument for unknown parameter values."""
    quality = quality.strip().lower()
    connection = connection.strip().lower()
    if quality not in REQUESTED_KBPS:
        raise InvalidArgument(f"quality must be one of low, normal, high, auto; got {quality!r}")
    if connection not in CONNECTIONS:
        raise InvalidArgument(
            f"connection must be one of cellular, wifi, ethernet, unknown; got {connection!r}"
        )
    if bandwidth_kbps < 0 or bandwidth_kbps > MAX_BANDWIDTH_KBPS:
        raise InvalidArgument(f"bandwidth_kbps must be between 0 and {MAX_BANDWIDTH_KBPS}")
    limits = [subscription_cap(product)]
    requested = REQUESTED_KBPS[quality]
    if requested is not None:
        limits.append(requested)
    else:
        if connection == "cellular":
            limits.append(CELLULAR_AUTO_KBPS)
        if bandwidth_kbps:
            limits.append(bandwidth_kbps // BANDWIDTH_HEADROOM)
    return min(limits)


def choose(files: Sequence[AudioFile], limit: int, cap: int) -> Choice | None:
    """Pick the file for ``limit``; alternatives are the other files within the subscription ``cap``.

    None when the track has no streamable file within the cap (previews do not count).
    """
    streamable = sorted(
        (f for f in files if f.streamable and f.storage_path),
        key=lambda f: f.bitrate_kbps,
    )
    allowed = [f for f in streamable if f.bitrate_kbps <= cap]
    if not allowed:
        return None
    fitting = [f for f in allowed if f.bitrate_kbps <= limit]
    chosen = fitting[-1] if fitting else allowed[0]
    return Choice(chosen, tuple(f for f in allowed if f is not chosen), limit)
