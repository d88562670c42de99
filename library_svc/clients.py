"""Stubs for the services library_svc calls (catalog for tracks, auth for owners), with deadlines."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.common.v1 import common_pb2

from meshkit import ids

CATALOG_BATCH = 50  # BatchGetTracks' limit


class Neighbours:
    def __init__(self, catalog: aio.Channel, auth: aio.Channel) -> None:
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(catalog)
        self.auth = auth_pb2_grpc.AuthServiceStub(auth)

    async def tracks(self, track_ids: Iterable[uuid.UUID]) -> dict[str, catalog_pb2.Track]:
        """Full track objects by base62 id, in batches of 50 (one call per batch)."""
        keys = [ids.encode(t) for t in track_ids]
        found: dict[str, catalog_pb2.Track] = {}
        for start in range(0, len(keys), CATALOG_BATCH):
            reply = await self.catalog.BatchGetTracks(
                catalog_pb2.BatchGetTracksRequest(ids=",".join(keys[start : start + CATALOG_BATCH]))
            )
            found.update((t.id, t) for t in reply.tracks)
        return found

    async def user(self, user_id: uuid.UUID) -> common_pb2.PublicUser:
        return await self.auth.GetUser(auth_pb2.GetUserRequest(user_id=ids.encode(user_id)))
