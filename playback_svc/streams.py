"""GetStreamUrl: from "play this track" to signed media URLs at the right quality.

The URL is ``<public base>/media/<storage path>?exp=&uid=&kid=&sig=`` (meshkit.signing): the
path names the file, so the quality is bound by the signature along with the user, the expiry
and the key id; media_svc verifies it and serves byte ranges. The seek index of every file is
signed the same way so a client can switch quality mid-track (fetch the other file's headers,
then bytes from the index's offset).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from meshkit import ids
from meshkit.errors import FailedPrecondition, NotFound
from meshkit.signing import sign
from playback_svc.clients import Catalog
from playback_svc.metrics import STREAM_START_SECONDS
from playback_svc.quality import choose, limit_kbps, subscription_cap

MEDIA_PREFIX = "/media/"
DEFAULT_CODEC = "vorbis"


@dataclass(frozen=True)
class Alternative:
    """Another rendition the user may switch to mid-track."""

    quality_kbps: int
    url: str
    seek_index_url: str


@dataclass(frozen=True)
class StreamUrl:
    """Signed URLs of the chosen rendition and its alternatives, valid until ``expires_at`` (unix s)."""

    track_id: str
    url: str
    seek_index_url: str
    quality_kbps: int
    codec: str
    duration_ms: int
    expires_at: int
    alternatives: tuple[Alternative, ...]


class StreamUrls:
    """Chooses a rendition and signs its URLs; ``clock`` (unix seconds) is injectable for tests."""

    def __init__(
        self, catalog: Catalog, public_base_url: str, ttl_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.catalog = catalog
        self.base = public_base_url.rstrip("/")
        self.ttl_s = ttl_s
        self.clock = clock

    def _signed(self, storage_path: str, uid: str, now: float) -> str:
        if not storage_path:
            return ""
        return self.base + sign(MEDIA_PREFIX + storage_path.lstrip("/"), uid, ttl_s=self.ttl_s, now=now)

    async def _track_duration(self, track_id: str) -> int:
        track = await self.catalog.track(track_id)
        return track.duration_ms if track is not None else 0

    async def get(
        self, user_id: uuid.UUID, product: str, track: str, quality: str, connection: str, bandwidth_kbps: int
    ) -> StreamUrl:
        """The stream of ``track`` (an id or URI) for ``user_id`` on a ``product`` subscription."""
        started = time.perf_counter()
        track_id = ids.encode(ids.parse_id_or_uri(track, "track"))
        limit = limit_kbps(quality, connection, bandwidth_kbps, product)
        files = await self.catalog.audio_files(track_id)
        if not files:
            if await self.catalog.track(track_id) is None:
                raise NotFound(f"track {track_id} not found")
            raise FailedPrecondition(f"track {track_id} has no audio yet")
        choice = choose(files, limit, subscription_cap(product))
        if choice is None:
            raise FailedPrecondition(f"track {track_id} has no audio file your subscription can play")

        now = float(int(self.clock()))  # whole seconds: the URL's exp and expires_at agree exactly
        uid = ids.encode(user_id)
        chosen = choice.chosen
        stream = StreamUrl(
            track_id=track_id,
            url=self._signed(chosen.storage_path, uid, now),
            seek_index_url=self._signed(chosen.seek_index_path, uid, now),
            quality_kbps=chosen.bitrate_kbps,
            codec=chosen.codec or DEFAULT_CODEC,
            duration_ms=chosen.duration_ms or await self._track_duration(track_id),
            expires_at=int(now) + self.ttl_s,
            alternatives=tuple(
                Alternative(
                    quality_kbps=alt.bitrate_kbps,
                    url=self._signed(alt.storage_path, uid, now),
                    seek_index_url=self._signed(alt.seek_index_path, uid, now),
                )
                for alt in choice.alternatives
            ),
        )
        STREAM_START_SECONDS.labels(str(chosen.bitrate_kbps)).observe(time.perf_counter() - started)
        return stream
