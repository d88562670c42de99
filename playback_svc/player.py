"""The player: each user's play state, shared by all their devices (Spotify's /v1/me/player).

A state is the current track, the position at ``updated_at``, playing or paused, the device,
shuffle and repeat, and the queue (the context's tracks). While playing, the live position is
``position_ms + (now - updated_at)``, capped at the track's end, so nothing needs to tick. Each
command locks the user's row, reads the live state, changes it and stamps ``updated_at``.

Commands are retry-safe: a retry with the same idempotency key gets the first answer and
changes nothing again (meshkit.idempotency), so a skip retried after a timeout skips once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from spotify.catalog.v1 import catalog_pb2

from meshkit import ids
from meshkit.errors import InvalidArgument, NotFound
from meshkit.idempotency import Idempotency, ValueCodec
from playback_svc.clients import MAX_QUEUE, Catalog, Contexts, Track
from playback_svc.models import REPEAT_STATES, PlayState
from playback_svc.player_store import PlayerStore
from playback_svc.queue import RESTART_THRESHOLD_MS, shuffled, step

MAX_DEVICE_ID = 128
UNKNOWN_DEVICE_TYPE = "Unknown"
# A command's answer is that it happened: nothing else is stored for a retry.
_DONE: ValueCodec[None] = ValueCodec(None)


@dataclass(frozen=True)
class Offset:
    """Where in a context to start: a position, or a track URI in it (neither: the first track)."""

    position: int | None = None
    uri: str = ""


@dataclass(frozen=True)
class Start:
    """Play ``uris`` (track URIs) or a context from an offset; with neither, resume."""

    device_id: str
    context_uri: str
    uris: tuple[str, ...]
    offset: Offset
    position_ms: int


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    type: str
    volume_percent: int | None


@dataclass(frozen=True)
class PlaybackView:
    """A user's playback as their devices see it now."""

    updated_at: datetime
    progress_ms: int
    is_playing: bool
    repeat_state: str
    shuffle: bool
    device: Device | None
    context_uri: str | None
    # The current track as catalog shows it; None when there is none, or catalog no longer knows it.
    track: catalog_pb2.Track | None


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
        catalog: Catalog,
        contexts: Contexts,
        idempotency: Idempotency,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store, self.catalog, self.contexts = store, catalog, contexts
        self.idempotency = idempotency
        self.clock = clock

    # ---- reads ------------------------------------------------------------------------------

    async def state(self, user_id: uuid.UUID) -> PlaybackView | None:
        """None when nothing is active (Spotify answers 204)."""
        state = await self.store.get(user_id)
        if state is None or (state.track_id is None and state.device_id is None):
            return None
        track = await self._track(state)
        device = None
        if state.device_id is not None:
            device = Device(
                id=state.device_id,
                name=state.device_name or state.device_id,
                type=state.device_type or UNKNOWN_DEVICE_TYPE,
                volume_percent=state.volume_percent,
            )
        return PlaybackView(
            updated_at=state.updated_at,
            progress_ms=live_position(state, self.clock(), track.duration_ms if track else 0),
            is_playing=state.is_playing and track is not None,
            repeat_state=state.repeat_state,
            shuffle=state.shuffle,
            device=device,
            context_uri=state.context_uri,
            track=track.object if track is not None else None,
        )

    # ---- commands: each retry-safe under its idempotency key ------------------------------------

    async def start(self, user_id: uuid.UUID, key: str, command: Start) -> None:
        """Play ``uris`` or a context from an offset; with neither, resume."""
        await self._once("start", user_id, key, command, lambda: self._start(user_id, command))

    async def pause(self, user_id: uuid.UUID, key: str, device_id: str) -> None:
        await self._once(
            "pause", user_id, key, {"device_id": device_id}, lambda: self._pause(user_id, device_id)
        )

    async def skip(self, user_id: uuid.UUID, key: str, device_id: str, *, forward: bool) -> None:
        """Next or previous in play order; "previous" after 3 s restarts the track instead."""
        await self._once(
            "next" if forward else "previous",
            user_id,
            key,
            {"device_id": device_id},
            lambda: self._skip(user_id, device_id, forward),
        )

    async def seek(self, user_id: uuid.UUID, key: str, position_ms: int, device_id: str) -> None:
        """Seek; a position past the end of the track skips to the next one (Spotify's rule)."""
        command = {"position_ms": position_ms, "device_id": device_id}
        await self._once("seek", user_id, key, command, lambda: self._seek(user_id, position_ms, device_id))

    async def repeat(self, user_id: uuid.UUID, key: str, mode: str, device_id: str) -> None:
        command = {"state": mode, "device_id": device_id}
        await self._once("repeat", user_id, key, command, lambda: self._repeat(user_id, mode, device_id))

    async def shuffle(self, user_id: uuid.UUID, key: str, on: bool, device_id: str) -> None:
        """On: the queue is reordered once (current first). Off: back to the context's order.

        A queue given as ``uris`` has no context to re-read, so it keeps its shuffled order.
        """
        command = {"state": on, "device_id": device_id}
        await self._once("shuffle", user_id, key, command, lambda: self._shuffle(user_id, on, device_id))

    async def transfer(self, user_id: uuid.UUID, key: str, device_ids: list[str], play: bool) -> None:
        command = {"device_ids": device_ids, "play": play}
        await self._once("transfer", user_id, key, command, lambda: self._transfer(user_id, device_ids, play))

    async def _once(
        self, scope: str, user_id: uuid.UUID, key: str, command: object, write: Callable[[], Awaitable[None]]
    ) -> None:
        await self.idempotency.run(scope, ids.encode(user_id), key, command, _DONE, write)

    async def _start(self, user_id: uuid.UUID, command: Start) -> None:
        device_id, context_uri, uris = command.device_id, command.context_uri, command.uris
        _check_device(device_id)
        if command.position_ms < 0:
            raise InvalidArgument("position_ms must not be negative")
        if context_uri and uris:
            raise InvalidArgument("give either context_uri or uris, not both")
        queue: list[str] | None = None
        if uris:
            if len(uris) > MAX_QUEUE:
                raise InvalidArgument(f"uris: at most {MAX_QUEUE} tracks")
            queue = [ids.encode(ids.parse_uri(uri, expected="track")[1]) for uri in uris]
        elif context_uri:
            queue = await self.contexts.tracks(context_uri)
        start_at = 0
        if queue is not None:
            start_at = _offset(queue, command.offset)
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
                state.context_uri = context_uri or None
                state.track_id = state.queue[start_at]
                if state.shuffle:  # a new context under shuffle plays shuffled, from the chosen track
                    state.queue = shuffled(state.queue, state.track_id)
                state.position_ms = command.position_ms
                state.is_playing = True
            self._use_device(state, device_id)
            state.updated_at = now

    async def _pause(self, user_id: uuid.UUID, device_id: str) -> None:
        _check_device(device_id)
        async with self.store.edit(user_id) as state:
            self._require_track(state)
            now = self.clock()
            state.position_ms = live_position(state, now, await self._duration(state))
            state.is_playing = False
            state.updated_at = now

    async def _skip(self, user_id: uuid.UUID, device_id: str, forward: bool) -> None:
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

    async def _seek(self, user_id: uuid.UUID, position_ms: int, device_id: str) -> None:
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

    async def _repeat(self, user_id: uuid.UUID, mode: str, device_id: str) -> None:
        _check_device(device_id)
        if mode not in REPEAT_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(REPEAT_STATES)}, got {mode!r}")
        await self._set(user_id, repeat_state=mode)

    async def _shuffle(self, user_id: uuid.UUID, on: bool, device_id: str) -> None:
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

    async def _transfer(self, user_id: uuid.UUID, device_ids: list[str], play: bool) -> None:
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

    async def _track(self, state: PlayState) -> Track | None:
        if state.track_id is None:
            return None
        return await self.catalog.track(ids.encode(state.track_id))

    async def _duration(self, state: PlayState) -> int:
        track = await self._track(state)
        return track.duration_ms if track is not None else 0


def _check_device(device_id: str) -> None:
    if len(device_id) > MAX_DEVICE_ID:
        raise InvalidArgument(f"device_id: at most {MAX_DEVICE_ID} characters")


def _offset(queue: list[str], offset: Offset) -> int:
    """Where in the queue to start: offset.position, or the offset.uri track, else the first."""
    if offset.position is not None:
        if not 0 <= offset.position < len(queue):
            raise InvalidArgument(f"offset.position must be between 0 and {len(queue) - 1}")
        return offset.position
    if offset.uri:
        track_id = ids.encode(ids.parse_uri(offset.uri, expected="track")[1])
        if track_id not in queue:
            raise InvalidArgument(f"offset.uri {offset.uri} is not in the context")
        return queue.index(track_id)
    return 0
