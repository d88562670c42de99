"""What auth_svc asks other services: each one's part of a user's data export (ExportUserData,
internal). Deadlines come from the channels; a service that cannot answer is Unavailable, and the
export is retried later."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from grpc import aio
from spotify.catalog.v1 import catalog_pb2_grpc
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2_grpc
from spotify.playback.v1 import playback_pb2_grpc
from spotify.rec.v1 import rec_pb2_grpc

from meshkit import ids
from meshkit.errors import Unavailable

Part = Callable[[common_pb2.ExportUserDataRequest], Awaitable[common_pb2.ExportUserDataResponse]]

# The services with a part in every export, and the stub each is asked through.
STUBS: Mapping[str, Callable[[aio.Channel], Any]] = {
    "catalog_svc": catalog_pb2_grpc.CatalogServiceStub,
    "library_svc": library_pb2_grpc.LibraryServiceStub,
    "playback_svc": playback_pb2_grpc.PlaybackServiceStub,
    "rec_svc": rec_pb2_grpc.RecommendationServiceStub,
}


class ServiceParts:
    """ExportUserData of every service with a part, over a channel to each."""

    def __init__(self, channels: Mapping[str, aio.Channel]) -> None:
        self.calls: dict[str, Part] = {
            name: make(channels[name]).ExportUserData for name, make in STUBS.items()
        }

    async def part(self, service: str, user_id: uuid.UUID) -> list[common_pb2.ExportedFile]:
        try:
            reply = await self.calls[service](common_pb2.ExportUserDataRequest(user_id=ids.encode(user_id)))
        except aio.AioRpcError as exc:
            raise Unavailable(f"{service} could not export its part ({exc.code().name})") from exc
        return list(reply.files)
