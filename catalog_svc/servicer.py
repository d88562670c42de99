"""CatalogService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc.objects import ObjectBuilder
from catalog_svc.store import CatalogStore
from meshkit import ids
from meshkit.errors import NotFound

MAX_TRACK_IDS = 50


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, store: CatalogStore, objects: ObjectBuilder) -> None:
        self.store = store
        self.objects = objects

    async def GetTrack(
        self, request: catalog_pb2.GetTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        track_id = ids.parse_id_or_uri(request.id, "track")
        found = await self.store.tracks_by_id([track_id])
        if track_id not in found:
            raise NotFound(f"track {request.id} not found")
        return self.objects.track(found[track_id])

    async def BatchGetTracks(
        self, request: catalog_pb2.BatchGetTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetTracksResponse:
        track_ids = ids.parse_id_list(request.ids, "track", limit=MAX_TRACK_IDS)
        found = await self.store.tracks_by_id(track_ids)
        return catalog_pb2.BatchGetTracksResponse(
            tracks=[self.objects.track(found[t]) for t in track_ids if t in found]
        )

    async def GetArtist(
        self, request: catalog_pb2.GetArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        artist = await self.store.artist(ids.parse_id_or_uri(request.id, "artist"))
        if artist is None:
            raise NotFound(f"artist {request.id} not found")
        return self.objects.artist(artist)

    async def ListGenres(
        self, request: catalog_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListGenresResponse:
        return catalog_pb2.ListGenresResponse(genres=await self.store.genres())
