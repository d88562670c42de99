"""Stubs for the services library_svc calls (catalog for track/album/artist objects, auth for users
and the audit log), with deadlines (from the channel) and their failures turned into domain errors.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import struct_pb2
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.common.v1 import common_pb2

from meshkit import ids
from meshkit.channels import is_status
from meshkit.context import current_request_id
from meshkit.errors import NotFound, Unavailable
from meshkit.ttlcache import TTLCache

log = logging.getLogger(__name__)

CATALOG_BATCH = 50  # BatchGetTracks' and BatchGetArtists' limit
ALBUM_BATCH = 20  # BatchGetAlbums' limit

T = TypeVar("T")


class Neighbours:
    def __init__(
        self,
        catalog: aio.Channel,
        auth: aio.Channel,
        public_base_url: str = "",
        track_cache: TTLCache[str, catalog_pb2.Track] | None = None,
    ) -> None:
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(catalog)
        self.auth = auth_pb2_grpc.AuthServiceStub(auth)
        self.base = public_base_url.rstrip("/")
        self.track_cache = track_cache if track_cache is not None else TTLCache(0, 0)

    # ---- catalog ---------------------------------------------------------------------------

    async def tracks(self, track_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Track]:
        """Full track objects by base62 id: cached ones, the rest with one BatchGetTracks per 50 ids
        (the batches concurrently). Unknown ids are left out, and never cached."""

        async def batch(joined: str) -> Sequence[catalog_pb2.Track]:
            reply = await self.catalog.BatchGetTracks(catalog_pb2.BatchGetTracksRequest(ids=joined))
            return reply.tracks

        async def load(missing: list[str]) -> dict[str, catalog_pb2.Track]:
            return await _batched(missing, CATALOG_BATCH, batch, "catalog_svc BatchGetTracks")

        return await self.track_cache.get_or_load(_keys(track_ids), load)

    async def albums(self, album_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Album]:
        """Full album objects by base62 id, 20 per BatchGetAlbums."""

        async def batch(keys: str) -> Sequence[catalog_pb2.Album]:
            reply = await self.catalog.BatchGetAlbums(catalog_pb2.BatchGetAlbumsRequest(ids=keys))
            return reply.albums

        return await _batched(_keys(album_ids), ALBUM_BATCH, batch, "catalog_svc BatchGetAlbums")

    async def artists(self, artist_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Artist]:
        """Full artist objects by base62 id, 50 per BatchGetArtists.

        Until catalog_svc implements BatchGetArtists, the same answer is built from GetArtist calls
        (concurrently; at most 50 per page, so this stays bounded).
        """
        wanted = list(artist_ids)

        async def batch(keys: str) -> Sequence[catalog_pb2.Artist]:
            reply = await self.catalog.BatchGetArtists(catalog_pb2.BatchGetArtistsRequest(ids=keys))
            return reply.artists

        try:
            return await _batched(_keys(wanted), CATALOG_BATCH, batch, "catalog_svc BatchGetArtists")
        except Unavailable as exc:
            if not isinstance(exc.__cause__, aio.AioRpcError) or not is_status(
                exc.__cause__, grpc.StatusCode.UNIMPLEMENTED
            ):
                raise

        async def one(artist_id: uuid.UUID) -> catalog_pb2.Artist | None:
            try:
                return await self.catalog.GetArtist(catalog_pb2.GetArtistRequest(id=ids.encode(artist_id)))
            except aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise _unavailable("catalog_svc GetArtist", exc) from exc

        found = await asyncio.gather(*(one(a) for a in wanted))
        return {artist.id: artist for artist in found if artist is not None}

    # ---- auth ------------------------------------------------------------------------------

    async def user(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        """The user's public profile; a bare reference when auth cannot say (banned, unknown, down).

        A playlist stays readable when its owner's profile cannot be fetched: the reference still
        carries the id, uri and href that clients link with.
        """
        try:
            return await self.auth.GetUser(auth_pb2.GetUserRequest(user_id=ids.encode(user_id)))
        except aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("auth_svc GetUser failed: %s", exc.code().name)
            return self.user_ref(user_id)

    async def users(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, common_pb2.PublicUser]:
        """Public profiles of several users (auth has no batch call: one GetUser each, concurrently)."""
        unique = list(dict.fromkeys(user_ids))
        found = await asyncio.gather(*(self.user(u) for u in unique))
        return dict(zip(unique, found, strict=True))

    async def require_user(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        """The user's public profile; NOT_FOUND when there is no such (unbanned) user."""
        try:
            return await self.auth.GetUser(auth_pb2.GetUserRequest(user_id=ids.encode(user_id)))
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"user {ids.encode(user_id)} not found") from exc
            raise _unavailable("auth_svc GetUser", exc) from exc

    def user_ref(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        """Spotify's minimal public user object (what `added_by` carries)."""
        key = ids.encode(user_id)
        return common_pb2.PublicUser(
            id=key,
            type="user",
            uri=f"spotify:user:{key}",
            href=f"{self.base}/v1/users/{key}",
            external_urls=common_pb2.ExternalUrls(spotify=f"{self.base}/user/{key}"),
        )

    async def audit(
        self,
        *,
        actor: uuid.UUID,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID,
        details: dict[str, Any],
        success: bool,
    ) -> None:
        """Append to auth_svc's audit log. Best effort: the change it records has already committed.

        If auth_svc cannot take it (not implemented yet, or down) the event is written to this
        service's log instead, so it is not lost silently.
        """
        payload = struct_pb2.Struct()
        payload.update(details)
        event = auth_pb2.AuditEvent(
            actor_id=ids.encode(actor),
            action=action,
            resource_type=resource_type,
            resource_id=ids.encode(resource_id),
            details=payload,
            success=success,
            request_id=current_request_id(),
        )
        try:
            await self.auth.RecordAuditEvent(auth_pb2.RecordAuditEventRequest(event=event))
        except aio.AioRpcError as exc:
            level = logging.INFO if exc.code() == grpc.StatusCode.UNIMPLEMENTED else logging.WARNING
            log.log(
                level,
                "audit event not recorded by auth_svc (%s); logged here instead",
                exc.code().name,
                extra={
                    "audit_action": action,
                    "audit_actor": event.actor_id,
                    "audit_resource": f"{resource_type}:{event.resource_id}",
                    "audit_details": details,
                    "audit_success": success,
                    "audit_status": exc.code().name,
                },
            )


def _keys(wanted: Iterable[uuid.UUID]) -> list[str]:
    """Distinct base62 ids, in order."""
    return list(dict.fromkeys(ids.encode(w) for w in wanted))


async def _batched(
    keys: Sequence[str],
    size: int,
    call: Callable[[str], Awaitable[Sequence[T]]],
    what: str,
) -> dict[str, T]:
    """Objects by base62 id from a comma-separated batch RPC, `size` ids per call, calls concurrent."""
    if not keys:
        return {}
    try:
        replies = await asyncio.gather(
            *(call(",".join(keys[start : start + size])) for start in range(0, len(keys), size))
        )
    except aio.AioRpcError as exc:
        raise _unavailable(what, exc) from exc
    return {obj.id: obj for reply in replies for obj in reply}  # type: ignore[attr-defined]


def _unavailable(what: str, exc: aio.AioRpcError) -> Unavailable:
    """A neighbour's failure as this service's UNAVAILABLE with a message that says whose it was."""
    if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
        return Unavailable(f"{what} is not implemented yet, so this request cannot be answered")
    return Unavailable(f"{what} failed ({exc.code().name}); retry later")
