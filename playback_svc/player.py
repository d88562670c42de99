"""The player: each user's play state, shared by all their devices (Spotify's /v1/me/player).

A state is the current track, the position at ``updated_at``, playing or paused, the device,
shuffle and repeat, and the queue (the context's tracks). While playing, the live position is
``position_ms + (now - updated_at)``, capped at the track's end, so nothing needs to tick. Each
command locks the user's row, reads the live state, changes it and stamps ``updated_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument, NotFound
from playback_svc.catalog import CatalogClient
from playback_svc.contexts import MAX_QUEUE, Contexts
from playback_svc.models import REPEAT_STATES, PlayState
from playback_svc.objects import context_object, millis
from playback_svc.player_store import PlayerStore
from playback_svc.queue import RESTART_THRESHOLD_MS, shuffled, step

MAX_DEVICE_ID = 128
UNKNOWN_DEVICE_TYPE = "Unknown"


def _now() -> datetime:
    return datetime.now(UTC)


def live_position(state: PlayState, now: datetime, duration_ms: int = 0) -> int:
    position = state.position_ms
    if state.is_playing and state.updated_at is not None:
        position += max(0, int((now - state.updated_at).total_seconds() * 1000))
    return min(position, duration_ms) if duration_ms > 0 else position


class Player:
    """Play-state commands and reads; ``clock`` is injectable for tests."""

    def __init__(
        self,
        store: PlayerStore,
        catalog: CatalogClient,
        contexts: Contexts,
        public_base_url: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.contexts = contexts
        self.base = public_base_url.rstrip("/")
        self.clock = clock

    # ---- reads ------------------------------------------------------------------------------

    async def state(self, user_id: uuid.UUID) -> playback_pb2.PlaybackState:
        """Spotify answers 204 when nothing is active; through the transcoder that is an empty object."""
        state = await self.store.get(user_id)
        if state is None or (state.track_id is None and state.device_id is None):
            return playback_pb2.PlaybackState()
        track = await self._track(state)
        reply = playback_pb2.PlaybackState(
            repeat_state=state.repeat_state,
            shuffle_state=state.shuffle,
            timestamp=float(millis(state.updated_at)),
            progress_ms=live_position(state, self.clock(), track.duration_ms if track else 0),
            is_playing=state.is_playing and track is not None,
            currently_playing_type="track" if track is not None else "unknown",
        )
        if state.device_id is not None:
            reply.device.CopyFrom(self._device(state))
        context = context_object(self.base, state.context_uri) if state.context_uri else None
        if context is not None:
            reply.context.CopyFrom(context)
        if track is not None:
            reply.item.CopyFrom(track)
        return reply

    async def currently_playing(self, user_id: uuid.UUID) -> playback_pb2.CurrentlyPlaying:
        full = await self.state(user_id)
        reply = playback_pb2.CurrentlyPlaying(
            timestamp=full.timestamp,
            progress_ms=full.progress_ms,
            is_playing=full.is_playing,
            currently_playing_type=full.currently_playing_type,
        )
        if full.HasField("context"):
            reply.context.CopyFrom(full.context)
        if full.HasField("item"):
            reply.item.CopyFrom(full.item)
        return reply

    # ---- commands ---------------------------------------------------------------------------

    async def start(self, user_id: uuid.UUID, device_id: str, body: playback_pb2.StartPlaybackBody) -> None:
        """Play ``uris`` or a context from an offset; with an empty body, resume."""
        _check_device(device_id)
        if body.position_ms < 0:
            raise InvalidArgument("position_ms must not be negative")
        if body.context_uri and body.uris:
            raise InvalidArgument("give either context_uri or uris, not both")
        queue: list[str] | None = None
        if body.uris:
            if len(body.uris) > MAX_QUEUE:
                raise InvalidArgument(f"uris: at most {MAX_QUEUE} tracks")
            queue = [ids.encode(ids.parse_uri(uri, expected="track")[1]) for uri in body.uris]
        elif body.context_uri:
            queue = await self.contexts.tracks(body.context_uri)
        start_at = 0
        if queue is not None:
            start_at = _offset(queue, body.offset)
            if await self.catalog.track(queue[start_at]) is None:
                raise NotFound(f"track {queue[start_at]} not found")

        async with self.store.edit(user_id) as state:
            now = self.clock()
            if queue is None:
                if state.track_id is None:
                    raise NotFound("nothing to resume: start playback with uris or a context_uri")
                state.position_ms = live_position(state, now, await self._duration(state))
                state.is_playing = True
            else:
                state.queue = [ids.decode(t) for t in queue]
                state.context_uri = body.context_uri or None
                state.track_id = state.queue[start_at]
                if state.shuffle:  # a new context under shuffle plays shuffled, from the chosen track
                    state.queue = shuffled(state.queue, state.track_id)
                state.position_ms = body.position_ms
                state.is_playing = True
            self._use_device(state, device_id)
            state.updated_at = now

    async def pause(self, user_id: uuid.UUID, device_id: str) -> None:
        _check_device(device_id)
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            now = self.clock()
            state.position_ms = live_position(state, now, await self._duration(state))
            state.is_playing = False
            state.updated_at = now

    async def skip(self, user_id: uuid.UUID, device_id: str, *, forward: bool) -> None:
        """Next or previous in play order; "previous" after 3 s restarts the track instead."""
        _check_device(device_id)
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            now = self.clock()
            if not forward and live_position(state, now) > RESTART_THRESHOLD_MS:
                target: int | None = None
            else:
                target = step(state.queue, state.track_id, forward=forward, repeat=state.repeat_state)
            if target is not None:
                state.track_id = state.queue[target]
            elif forward:
                state.is_playing = False  # past the end of the queue: stop on the last track
            state.position_ms = 0
            state.updated_at = now

    async def seek(self, user_id: uuid.UUID, position_ms: int, device_id: str) -> None:
        """Seek; a position past the end of the track skips to the next one (Spotify's rule)."""
        _check_device(device_id)
        if position_ms < 0:
            raise InvalidArgument("position_ms must not be negative")
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            duration = await self._duration(state)
            if duration and position_ms >= duration:
                target = step(state.queue, state.track_id, forward=True, repeat=state.repeat_state)
                if target is not None:
                    state.track_id = state.queue[target]
                    position_ms = 0
                else:
                    state.is_playing = False
                    position_ms = duration
            state.position_ms = position_ms
            state.updated_at = self.clock()

    async def repeat(self, user_id: uuid.UUID, mode: str, device_id: str) -> None:
        _check_device(device_id)
        if mode not in REPEAT_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(REPEAT_STATES)}, got {mode!r}")
        await self._set(user_id, repeat_state=mode)

    async def shuffle(self, user_id: uuid.UUID, on: bool, device_id: str) -> None:
        """On: the queue is reordered once (current first). Off: back to the context's order.

        A queue given as ``uris`` has no context to re-read, so it keeps its shuffled order.
        """
        _check_device(device_id)
        current = await self.store.get(user_id)
        original: list[str] | None = None
        if current is not None and current.shuffle and not on and current.context_uri:
            original = await self.contexts.tracks(current.context_uri)
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            now = self.clock()
            state.position_ms = live_position(state, now, await self._duration(state))
            if on and not state.shuffle and state.track_id is not None:
                state.queue = shuffled(state.queue, state.track_id)
            elif not on and state.shuffle and original is not None:
                state.queue = [ids.decode(t) for t in original]
            state.shuffle = on
            state.updated_at = now

    async def transfer(self, user_id: uuid.UUID, device_ids: list[str], play: bool) -> None:
        if len(device_ids) != 1:
            raise InvalidArgument("device_ids must name exactly one device")
        _check_device(device_ids[0])
        if not device_ids[0]:
            raise InvalidArgument("device_ids must name a device")
        async with self.store.edit(user_id) as state:
            now = self.clock()
            state.position_ms = live_position(state, now, await self._duration(state))
            self._use_device(state, device_ids[0])
            if play and state.track_id is not None:
                state.is_playing = True
            state.updated_at = now

    # ---- helpers ----------------------------------------------------------------------------

    async def _set(self, user_id: uuid.UUID, **changes: object) -> None:
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            now = self.clock()
            state.position_ms = live_position(state, now, await self._duration(state))
            for name, value in changes.items():
                setattr(state, name, value)
            state.updated_at = now

    @staticmethod
    def _require_track(state: PlayState) -> None:
        if state.track_id is None:
            raise NotFound("no active playback: start playing something first")

    @staticmethod
    def _use_device(state: PlayState, device_id: str) -> None:
        if device_id and device_id != state.device_id:
            state.device_id = device_id
            state.device_name = device_id[:100]
            state.device_type = UNKNOWN_DEVICE_TYPE

    async def _track(self, state: PlayState) -> catalog_pb2.Track | None:
        if state.track_id is None:
            return None
        return await self.catalog.track(ids.encode(state.track_id))

    async def _duration(self, state: PlayState) -> int:
        track = await self._track(state)
        return track.duration_ms if track is not None else 0

    def _device(self, state: PlayState) -> playback_pb2.Device:
        return playback_pb2.Device(
            id=state.device_id or "",
            is_active=True,
            name=state.device_name or state.device_id or "",
            type=state.device_type or UNKNOWN_DEVICE_TYPE,
            volume_percent=state.volume_percent or 0,
            supports_volume=state.volume_percent is not None,
        )


def _check_device(device_id: str) -> None:
    if len(device_id) > MAX_DEVICE_ID:
        raise InvalidArgument(f"device_id: at most {MAX_DEVICE_ID} characters")


def _offset(queue: list[str], offset: playback_pb2.PlaybackOffset) -> int:
    """Where in the queue to start: offset.position, or the offset.uri track, else the first."""
    if offset.HasField("position"):
        if not 0 <= offset.position < len(queue):
            raise InvalidArgument(f"offset.position must be between 0 and {len(queue) - 1}")
        return offset.position
    if offset.uri:
        track_id = ids.encode(ids.parse_uri(offset.uri, expected="track")[1])
        if track_id not in queue:
            raise InvalidArgument(f"offset.uri {offset.uri} is not in the context")
        return queue.index(track_id)
    return 0
