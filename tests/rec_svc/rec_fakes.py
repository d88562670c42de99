"""A test double of catalog_svc for rec_svc: the few CatalogService RPCs rec calls, over real gRPC.

It serves a synthetic world's catalog (tracks, artists with genres, audio features for the
tracks that have them) and lets a test add a track later, as ingest would. rec's logic is
what is under test; the catalog's own behaviour is tested in tests/catalog_svc.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from devdata.rec_world import World
from meshkit import ids
from meshkit.config import Settings
from meshkit.errors import InvalidArgument, NotFound
from meshkit.server import start_server
from rec_svc.model.types import TrackMeta


@dataclass
class CatalogData:
    tracks: dict[uuid.UUID, TrackMeta] = field(default_factory=dict)
    artist_genres: dict[uuid.UUID, tuple[str, ...]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, world: World) -> CatalogData:
        data = cls()
        for meta in world.tracks:
            data.add(meta)
        return data

    def add(self, meta: TrackMeta) -> None:
        self.tracks[meta.track_id] = meta
        for a in meta.artist_ids:
            self.artist_genres[a] = tuple(dict.fromkeys((*self.artist_genres.get(a, ()), *meta.genres)))

    def genres(self) -> list[str]:
        return sorted({g for gs in self.artist_genres.values() for g in gs})


def artist_pb(artist_id: uuid.UUID, data: CatalogData, *, full: bool) -> catalog_pb2.Artist:
    key = ids.encode(artist_id)
    return catalog_pb2.Artist(
        id=key,
        name=f"Artist {key[:6]}",
        type="artist",
        uri=f"spotify:artist:{key}",
        genres=list(data.artist_genres.get(artist_id, ())) if full else [],
    )


def track_pb(meta: TrackMeta, data: CatalogData) -> catalog_pb2.Track:
    key = ids.encode(meta.track_id)
    return catalog_pb2.Track(
        id=key,
        name=f"Track {key[:6]}",
        type="track",
        uri=f"spotify:track:{key}",
        duration_ms=180_000,
        popularity=int(meta.popularity),
        artists=[artist_pb(a, data, full=False) for a in meta.artist_ids],
    )


class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, data: CatalogData) -> None:
        self.data = data

    def _count(self, name: str) -> None:
        self.data.calls[name] = self.data.calls.get(name, 0) + 1

    async def BatchGetTracks(
        self, request: catalog_pb2.BatchGetTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetTracksResponse:
        self._count("BatchGetTracks")
        wanted = ids.parse_id_list(request.ids, "track", limit=50)
        return catalog_pb2.BatchGetTracksResponse(
            tracks=[track_pb(self.data.tracks[t], self.data) for t in wanted if t in self.data.tracks]
        )

    async def BatchGetArtists(
        self, request: catalog_pb2.BatchGetArtistsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetArtistsResponse:
        wanted = ids.parse_id_list(request.ids, "artist", limit=50)
        return catalog_pb2.BatchGetArtistsResponse(
            artists=[artist_pb(a, self.data, full=True) for a in wanted if a in self.data.artist_genres]
        )

    async def BatchGetAudioFeatures(
        self, request: catalog_pb2.BatchGetAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetAudioFeaturesResponse:
        wanted = ids.parse_id_list(request.ids, "track", limit=100)
        out = []
        for t in wanted:
            meta = self.data.tracks.get(t)
            if meta is not None and meta.features:
                values = {**meta.features, "mode": int(meta.features.get("mode", 1))}
                out.append(catalog_pb2.AudioFeatures(id=ids.encode(t), type="audio_features", **values))
        return catalog_pb2.BatchGetAudioFeaturesResponse(audio_features=out)

    async def ListGenres(
        self, request: catalog_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListGenresResponse:
        return catalog_pb2.ListGenresResponse(genres=self.data.genres())

    async def GetArtist(
        self, request: catalog_pb2.GetArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        artist = ids.parse_id_or_uri(request.id, "artist")
        if artist not in self.data.artist_genres:
            raise NotFound(f"artist {request.id} not found")
        return artist_pb(artist, self.data, full=True)

    async def Search(
        self, request: catalog_pb2.SearchRequest, context: aio.ServicerContext
    ) -> catalog_pb2.SearchResponse:
        if not request.q.startswith('genre:"'):
            raise InvalidArgument("this fake only answers genre searches")
        genre = request.q[len('genre:"') : -1]
        matching = sorted(
            (m for m in self.data.tracks.values() if genre in m.genres), key=lambda m: m.track_id
        )
        limit = request.limit or 20
        page = matching[request.offset : request.offset + limit]
        more = request.offset + limit < len(matching)
        return catalog_pb2.SearchResponse(
            tracks=catalog_pb2.TrackPage(
                items=[track_pb(m, self.data) for m in page],
                limit=limit,
                offset=request.offset,
                total=len(matching),
                next="more" if more else "",
            )
        )


async def start_fake_catalog(data: CatalogData, stack: AsyncExitStack) -> str:
    """Serve the fake with meshkit's bootstrap (so DomainErrors become status codes); returns its address."""

    async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> list[str]:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(FakeCatalog(data), server)
        return [catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name]

    running = await start_server("catalog_svc", setup, Settings(listen_addr="127.0.0.1:0"), stack)
    stack.push_async_callback(running.stop, 0)
    return f"127.0.0.1:{running.port}"
