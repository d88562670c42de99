"""What library asks other services: catalog_svc for track, album and artist objects (through the
mesh's one catalog client), auth_svc for users and the audit log. Deadlines come from the channels;
failures become domain errors.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

import grpc
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2

from meshkit import ids, links
from meshkit.audit import AuditLog
from meshkit.catalog_client import CatalogClient
from meshkit.errors import NotFound, Unavailable

log = logging.getLogger(__name__)


class Catalog:
    """Catalog objects by UUID, answered keyed by their base62 id; unknown ids are left out.

    Track objects are cached by the client (LIBRARY_TRACK_CACHE_*): every playlist page asks for
    up to 100 of them.
    """

    def __init__(self, client: CatalogClient) -> None:
        self.client = client

    async def tracks(self, track_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Track]:
        return await self.client.tracks(ids.encode(t) for t in track_ids)

    async def albums(self, album_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Album]:
        return await self.client.albums(ids.encode(a) for a in album_ids)

    async def artists(self, artist_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Artist]:
        return await self.client.artists(ids.encode(a) for a in artist_ids)


class Auth:
    """Users' public profiles and the audit log, from auth_svc."""

    def __init__(self, channel: aio.Channel, public_base_url: str = "") -> None:
        self.stub = auth_pb2_grpc.AuthServiceStub(channel)
        # Appends to auth_svc's audit log (best effort, after the change committed).
        self.audit = AuditLog(self.stub).record
        self.base = public_base_url.rstrip("/")

    async def user(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        """The user's public profile; a bare reference when auth cannot say (banned, unknown, down).

        A playlist stays readable when its owner's profile cannot be fetched: the reference still
        carries the id, uri and href that clients link with.
        """
        try:
            return await self.stub.GetUser(auth_pb2.GetUserRequest(user_id=ids.encode(user_id)))
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
            return await self.stub.GetUser(auth_pb2.GetUserRequest(user_id=ids.encode(user_id)))
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"user {ids.encode(user_id)} not found") from exc
            raise Unavailable(f"auth_svc GetUser failed ({exc.code().name}); retry later") from exc

    def user_ref(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        """Spotify's minimal public user object (what `added_by` carries), built without a call."""
        key = ids.encode(user_id)
        where = links.of(self.base, "user", key)
        return common_pb2.PublicUser(
            id=key,
            type="user",
            uri=where.uri,
            href=where.href,
            external_urls=common_pb2.ExternalUrls(spotify=where.open_url),
        )
