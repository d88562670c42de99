"""Spotify-shaped pieces playback builds itself (tracks come from catalog already shaped)."""

from __future__ import annotations

from datetime import UTC, datetime

from spotify.common.v1 import common_pb2
from spotify.playback.v1 import playback_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument


def millis(moment: datetime) -> int:
    """Unix time in milliseconds, as Spotify's timestamps and cursors are."""
    return int(moment.timestamp() * 1000)


def rfc3339(moment: datetime) -> str:
    """``2016-12-13T20:44:04.589Z``: UTC with milliseconds, the shape of Spotify's played_at."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def context_object(base: str, uri: str) -> playback_pb2.PlaybackContext | None:
    """The context object of ``spotify:<kind>:<id>``; None for anything else (a client's context_uri
    in an old playback event is not validated, and must not break a history page)."""
    try:
        kind, value = ids.parse_uri(uri)
    except InvalidArgument:
        return None
    key = ids.encode(value)
    return playback_pb2.PlaybackContext(
        type=kind,
        uri=uri,
        href=f"{base}/v1/{kind}s/{key}",
        external_urls=common_pb2.ExternalUrls(spotify=f"{base}/{kind}/{key}"),
    )
