"""RecommendationService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc


class RecommendationServicer(rec_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, catalog: catalog_pb2_grpc.CatalogServiceStub) -> None:
        self.catalog = catalog

    async def ListAvailableGenreSeeds(
        self, request: rec_pb2.ListAvailableGenreSeedsRequest, context: aio.ServicerContext
    ) -> rec_pb2.ListAvailableGenreSeedsResponse:
        """Seeds are the catalog's genres: catalog_svc owns them, so ask it rather than keep a copy."""
        reply = await self.catalog.ListGenres(catalog_pb2.ListGenresRequest())
        return rec_pb2.ListAvailableGenreSeedsResponse(genres=list(reply.genres))
