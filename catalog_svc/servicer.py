"""CatalogService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED.

Multi-gets (BatchGet*) leave unknown ids out of the response, in request order otherwise:
Spotify answers `null` in their place, but a JSON-transcoded repeated message field cannot hold
a null, so the contract documents "left out" instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Value
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.common.v1 import common_pb2

from catalog_svc import requests, rules
from catalog_svc.ingestion import Ingestion, Upload
from catalog_svc.objects import ObjectBuilder
from catalog_svc.reads import NoFeatures, Reads
from catalog_svc.search import MAX_OFFSET, Search
from catalog_svc.search_query import parse_query, parse_types
from catalog_svc.takedowns import Takedowns
from catalog_svc.writes import Writes
from meshkit import ids, paging, user_export
from meshkit.errors import InvalidArgument, NotFound
from meshkit.json_values import as_value

MAX_TRACK_IDS = 50
MAX_ALBUM_IDS = 20
MAX_ARTIST_IDS = 50
MAX_FEATURE_IDS = 100
# ListGenres pages only when asked to (page_size 0 is every genre), and any int32 size is fine.
ALL_GENRES = 2**31 - 1


M = TypeVar("M", bound=Message)
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    reads: Reads
    search: Search
    objects: ObjectBuilder
    writes: Writes | None = None
    ingestion: Ingestion | None = None
    takedowns: Takedowns | None = None
    export: user_export.Exporter | None = None

    # ---- the gets every kind shares -----------------------------------------------------------

    async def _one(
        self,
        key: str,
        market_code: str,
        kind: str,
        load: Callable[[uuid.UUID], Awaitable[R | None]],
        build: Callable[[R, str], M],
    ) -> M:
        """Get<Kind>: the entity `key` names (an id or a URI) in the market, or NOT_FOUND."""
        entity_id = ids.parse_id_or_uri(key, kind)
        market = rules.market(market_code)
        return build(_found(await load(entity_id), f"{kind} {key}"), market)

    async def _several(
        self,
        id_list: str,
        market_code: str,
        kind: str,
        limit: int,
        load: Callable[[list[uuid.UUID]], Awaitable[list[R | None]]],
        build: Callable[[R, str], M],
    ) -> list[M | None]:
        """A multi-get: one object per requested id, in order, None where an id is unknown."""
        keys = ids.parse_id_list(id_list, kind, limit=limit)
        market = rules.market(market_code)
        return [build(found, market) if found is not None else None for found in await load(keys)]

    # ---- audio ---------------------------------------------------------------------------------

    def _ingestion(self) -> Ingestion:
        if self.ingestion is None:
            raise NotImplementedError
        return self.ingestion

    async def IngestTrackAudio(
        self,
        request_iterator: AsyncIterator[catalog_pb2.IngestTrackAudioRequest],
        context: aio.ServicerContext,
    ) -> catalog_pb2.IngestJob:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise InvalidArgument("the upload is empty: send the metadata, then the file's bytes")
        ingestion = self._ingestion()
        if first.WhichOneof("payload") != "metadata":
            raise InvalidArgument("the first message of an upload must carry its metadata")
        meta = first.metadata
        upload = Upload(track=meta.track_id, filename=meta.filename, size=meta.size)
        return self.objects.ingest_job(await ingestion.submit(upload, _chunks(request_iterator)))

    async def GetIngestJob(
        self, request: catalog_pb2.GetIngestJobRequest, context: aio.ServicerContext
    ) -> catalog_pb2.IngestJob:
        return self.objects.ingest_job(await self._ingestion().job(request.id))

    async def ListTrackAudioFiles(
        self, request: catalog_pb2.ListTrackAudioFilesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListTrackAudioFilesResponse:
        files = await self._ingestion().audio_files(request.track_id, seek_points=request.include_seek_points)
        return catalog_pb2.ListTrackAudioFilesResponse(
            audio_files=[self.objects.audio_file(f) for f in files]
        )

    # ---- data export ----------------------------------------------------------------------------

    async def ExportUserData(
        self, request: common_pb2.ExportUserDataRequest, context: aio.ServicerContext
    ) -> common_pb2.ExportUserDataResponse:
        if self.export is None:
            raise NotImplementedError
        return await user_export.answer(request, self.export)

    # ---- takedowns ----------------------------------------------------------------------------

    def _takedowns(self) -> Takedowns:
        if self.takedowns is None:
            raise NotImplementedError
        return self.takedowns

    async def TakeDownContent(
        self, request: catalog_pb2.TakeDownContentRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Takedown:
        row = await self._takedowns().take_down(request.collection, request.id, request.reason)
        return self.objects.takedown(row)

    async def ListTakedowns(
        self, request: catalog_pb2.ListTakedownsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListTakedownsResponse:
        page = paging.request_window(request)
        rows, total = await self._takedowns().list_all(request.collection, page)
        return catalog_pb2.ListTakedownsResponse(
            takedowns=[self.objects.takedown(row) for row in rows],
            total=total,
            limit=page.limit,
            offset=page.offset,
            next_page_token=paging.next_page_token(page, total),
        )

    async def RestoreContent(
        self, request: catalog_pb2.RestoreContentRequest, context: aio.ServicerContext
    ) -> catalog_pb2.RestoreContentResponse:
        restored = await self._takedowns().restore(request.collection, request.id, request.reason)
        return catalog_pb2.RestoreContentResponse(
            uri=restored.target.uri, was_taken_down=restored.was_taken_down
        )

    # ---- tracks -------------------------------------------------------------------------------

    async def GetTrack(
        self, request: catalog_pb2.GetTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        return await self._one(request.id, request.market, "track", self.reads.track, self.objects.track)

    async def BatchGetTracks(
        self, request: catalog_pb2.BatchGetTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetTracksResponse:
        return catalog_pb2.BatchGetTracksResponse(tracks=_known(await self._several_tracks(request)))

    async def GetSeveralTracks(
        self, request: catalog_pb2.GetSeveralTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralTracksResponse:
        return catalog_pb2.GetSeveralTracksResponse(tracks=_values(await self._several_tracks(request)))

    async def _several_tracks(
        self, request: catalog_pb2.BatchGetTracksRequest | catalog_pb2.GetSeveralTracksRequest
    ) -> list[catalog_pb2.Track | None]:
        # Only BatchGetTracks (internal, gRPC) can ask for withdrawn tracks; the JSON form shows none.
        withdrawn = isinstance(request, catalog_pb2.BatchGetTracksRequest) and request.include_unavailable
        load = partial(self.reads.tracks, include_withdrawn=withdrawn)
        return await self._several(
            request.ids, request.market, "track", MAX_TRACK_IDS, load, self.objects.track
        )

    async def GetAudioFeatures(
        self, request: catalog_pb2.GetAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.AudioFeatures:
        found = await self.reads.audio_features(ids.parse_id_or_uri(request.id, "track"))
        if found is NoFeatures.NOT_INGESTED:
            raise NotFound(f"track {request.id} has no audio features yet (its audio is not ingested)")
        if found is NoFeatures.NO_TRACK:
            raise NotFound(f"track {request.id} not found")
        return self.objects.audio_features(found)

    async def BatchGetAudioFeatures(
        self, request: catalog_pb2.BatchGetAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetAudioFeaturesResponse:
        found = await self._several_audio_features(request.ids)
        return catalog_pb2.BatchGetAudioFeaturesResponse(audio_features=_known(found))

    async def GetSeveralAudioFeatures(
        self, request: catalog_pb2.GetSeveralAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralAudioFeaturesResponse:
        found = await self._several_audio_features(request.ids)
        return catalog_pb2.GetSeveralAudioFeaturesResponse(audio_features=_values(found))

    async def _several_audio_features(self, id_list: str) -> list[catalog_pb2.AudioFeatures | None]:
        return await self._several(
            id_list,
            "",
            "track",
            MAX_FEATURE_IDS,
            self.reads.several_audio_features,
            _no_market(self.objects.audio_features),
        )

    # ---- albums -------------------------------------------------------------------------------

    async def GetAlbum(
        self, request: catalog_pb2.GetAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        return await self._one(request.id, request.market, "album", self.reads.album, self.objects.album)

    async def BatchGetAlbums(
        self, request: catalog_pb2.BatchGetAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetAlbumsResponse:
        return catalog_pb2.BatchGetAlbumsResponse(albums=_known(await self._several_albums(request)))

    async def GetSeveralAlbums(
        self, request: catalog_pb2.GetSeveralAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralAlbumsResponse:
        return catalog_pb2.GetSeveralAlbumsResponse(albums=_values(await self._several_albums(request)))

    async def _several_albums(
        self, request: catalog_pb2.BatchGetAlbumsRequest | catalog_pb2.GetSeveralAlbumsRequest
    ) -> list[catalog_pb2.Album | None]:
        return await self._several(
            request.ids, request.market, "album", MAX_ALBUM_IDS, self.reads.albums, self.objects.album
        )

    async def ListAlbumTracks(
        self, request: catalog_pb2.ListAlbumTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.TrackPage:
        album_id = ids.parse_id_or_uri(request.id, "album")
        market = rules.market(request.market)
        window = paging.request_window(request)
        page = _found(await self.reads.album_tracks(album_id, window), f"album {request.id}")
        return self.objects.page(
            catalog_pb2.TrackPage,
            f"/v1/albums/{ids.encode(album_id)}/tracks",
            [self.objects.simple_track(r, market) for r in page.items],
            window,
            page.total,
            {"market": market},
        )

    # ---- artists ------------------------------------------------------------------------------

    async def GetArtist(
        self, request: catalog_pb2.GetArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        return await self._one(request.id, "", "artist", self.reads.artist, _no_market(self.objects.artist))

    async def BatchGetArtists(
        self, request: catalog_pb2.BatchGetArtistsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetArtistsResponse:
        return catalog_pb2.BatchGetArtistsResponse(artists=_known(await self._several_artists(request.ids)))

    async def GetSeveralArtists(
        self, request: catalog_pb2.GetSeveralArtistsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralArtistsResponse:
        found = await self._several_artists(request.ids)
        return catalog_pb2.GetSeveralArtistsResponse(artists=_values(found))

    async def _several_artists(self, id_list: str) -> list[catalog_pb2.Artist | None]:
        return await self._several(
            id_list, "", "artist", MAX_ARTIST_IDS, self.reads.artists, _no_market(self.objects.artist)
        )

    async def ListArtistAlbums(
        self, request: catalog_pb2.ListArtistAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.AlbumPage:
        artist_id = ids.parse_id_or_uri(request.id, "artist")
        groups = rules.include_groups(request.include_groups)
        market = rules.market(request.market)
        window = paging.request_window(request)
        page = _found(await self.reads.artist_albums(artist_id, groups, window), f"artist {request.id}")
        items = []
        for entry in page.items:
            album = self.objects.simple_album(entry.record.album, entry.record.artists, market)
            album.album_group = entry.group
            items.append(album)
        return self.objects.page(
            catalog_pb2.AlbumPage,
            f"/v1/artists/{ids.encode(artist_id)}/albums",
            items,
            window,
            page.total,
            {"include_groups": request.include_groups, "market": market},
        )

    async def ListArtistTopTracks(
        self, request: catalog_pb2.ListArtistTopTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListArtistTopTracksResponse:
        artist_id = ids.parse_id_or_uri(request.id, "artist")
        market = rules.market(request.market)
        tracks = _found(await self.reads.artist_top_tracks(artist_id), f"artist {request.id}")
        return catalog_pb2.ListArtistTopTracksResponse(tracks=[self.objects.track(r, market) for r in tracks])

    async def ListGenres(
        self, request: catalog_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListGenresResponse:
        window = paging.window(
            page_size=request.page_size, page_token=request.page_token, default=ALL_GENRES, maximum=ALL_GENRES
        )
        page = await self.reads.genres(window)
        following = window.offset + window.limit
        return catalog_pb2.ListGenresResponse(
            genres=page.items,
            next_page_token=paging.encode_token(following) if following < page.total else "",
        )

    # ---- search -------------------------------------------------------------------------------

    async def Search(
        self, request: catalog_pb2.SearchRequest, context: aio.ServicerContext
    ) -> catalog_pb2.SearchResponse:
        query = parse_query(request.q)
        types = parse_types(request.type)
        market = rules.market(request.market)
        window = paging.request_window(request, max_offset=MAX_OFFSET)
        found = await self.search.search(query, types, window)
        params = {"q": request.q, "type": request.type, "market": market}
        page = partial(self.objects.page, path="/v1/search", window=window, params=params)
        response = catalog_pb2.SearchResponse()
        if found.tracks is not None:
            items = [self.objects.track(t, market) for t in found.tracks.items]
            response.tracks.CopyFrom(page(catalog_pb2.TrackPage, items=items, total=found.tracks.total))
        if found.albums is not None:
            items = [self.objects.simple_album(a.album, a.artists, market) for a in found.albums.items]
            response.albums.CopyFrom(page(catalog_pb2.AlbumPage, items=items, total=found.albums.total))
        if found.artists is not None:
            items = [self.objects.artist(a) for a in found.artists.items]
            response.artists.CopyFrom(page(catalog_pb2.ArtistPage, items=items, total=found.artists.total))
        return response

    # ---- writes -------------------------------------------------------------------------------

    def _writes(self) -> Writes:
        if self.writes is None:
            raise NotImplementedError  # a read-only deployment: UNIMPLEMENTED
        return self.writes

    async def CreateArtist(
        self, request: catalog_pb2.CreateArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        write = requests.write_request("CreateArtist", request)
        return self.objects.artist(
            await self._writes().create_artist(write, partial(requests.artist_draft, request))
        )

    async def UpdateArtist(
        self, request: catalog_pb2.UpdateArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        write = requests.write_request("UpdateArtist", request)
        return self.objects.artist(
            await self._writes().update_artist(write, partial(requests.artist_changes, request))
        )

    async def CreateAlbum(
        self, request: catalog_pb2.CreateAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        write = requests.write_request("CreateAlbum", request)
        return self.objects.album(
            await self._writes().create_album(write, partial(requests.album_draft, request))
        )

    async def UpdateAlbum(
        self, request: catalog_pb2.UpdateAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        write = requests.write_request("UpdateAlbum", request)
        return self.objects.album(
            await self._writes().update_album(write, partial(requests.album_changes, request))
        )

    async def CreateTrack(
        self, request: catalog_pb2.CreateTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        write = requests.write_request("CreateTrack", request)
        return self.objects.track(
            await self._writes().create_track(write, partial(requests.track_draft, request))
        )

    async def UpdateTrack(
        self, request: catalog_pb2.UpdateTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        write = requests.write_request("UpdateTrack", request)
        return self.objects.track(
            await self._writes().update_track(write, partial(requests.track_changes, request))
        )


# ---- helpers ---------------------------------------------------------------------------------------


def _found(value: T | None, what: str) -> T:
    """`value`, or NOT_FOUND naming `what` as the caller named it."""
    if value is None:
        raise NotFound(f"{what} not found")
    return value


def _no_market(build: Callable[[R], M]) -> Callable[[R, str], M]:
    """A builder for objects that look the same in every market."""
    return lambda value, _market: build(value)


def _known(messages: Sequence[M | None]) -> list[M]:
    return [m for m in messages if m is not None]


def _values(messages: Sequence[M | None]) -> list[Value]:
    return [as_value(m) for m in messages]


async def _chunks(messages: AsyncIterator[catalog_pb2.IngestTrackAudioRequest]) -> AsyncIterator[bytes]:
    """The file's bytes from the messages after an upload's first."""
    async for message in messages:
        if message.WhichOneof("payload") != "chunk":
            raise InvalidArgument("only the first message of an upload may carry metadata")
        yield message.chunk
