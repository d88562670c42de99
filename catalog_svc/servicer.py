"""CatalogService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED.

Multi-gets (BatchGet*) leave unknown ids out of the response, in request order otherwise:
Spotify answers `null` in their place, but a JSON-transcoded repeated message field cannot hold
a null, so the contract documents "left out" instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from catalog_svc import fields, paging, writes
from catalog_svc.editor import CatalogEditor, WriteRequest
from catalog_svc.ingestion import Ingestion, audio_file_message, job_message
from catalog_svc.objects import ALBUM_TRACKS_LIMIT, ObjectBuilder
from catalog_svc.permissions import Permissions
from catalog_svc.search_query import SearchQuery, parse_query, parse_types
from catalog_svc.search_store import SearchStore
from catalog_svc.store import CatalogStore
from meshkit import ids
from meshkit.context import current_idempotency_key
from meshkit.errors import InvalidArgument, NotFound
from meshkit.json_values import as_value

MAX_TRACK_IDS = 50
MAX_ALBUM_IDS = 20
MAX_ARTIST_IDS = 50
MAX_FEATURE_IDS = 100
MAX_SEARCH_OFFSET = 1000  # Spotify's limit for search

ARTIST_FIELDS = ("name", "genres", "images", "manager_user_ids")
ALBUM_FIELDS = (
    "name",
    "album_type",
    "release_date",
    "release_date_precision",
    "label",
    "genres",
    "images",
    "artist_ids",
    "copyrights",
    "available_markets",
)
TRACK_FIELDS = ("name", "track_number", "disc_number", "explicit", "isrc", "artist_ids")


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self,
        store: CatalogStore,
        objects: ObjectBuilder,
        search: SearchStore | None = None,
        editor: CatalogEditor | None = None,
        ingestion: Ingestion | None = None,
    ) -> None:
        self.store = store
        self.objects = objects
        self.search = search or SearchStore(store.sessions)
        self.editor = editor
        self.ingestion = ingestion

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
        return job_message(await self._ingestion().submit(first, request_iterator))

    async def GetIngestJob(
        self, request: catalog_pb2.GetIngestJobRequest, context: aio.ServicerContext
    ) -> catalog_pb2.IngestJob:
        return job_message(await self._ingestion().job(request.id))

    async def ListTrackAudioFiles(
        self, request: catalog_pb2.ListTrackAudioFilesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListTrackAudioFilesResponse:
        ingestion = self._ingestion()
        rows = await ingestion.audio_files(request.track_id)
        root = ingestion.storage_root if request.include_seek_points else None
        return catalog_pb2.ListTrackAudioFilesResponse(
            audio_files=[audio_file_message(r, root) for r in rows]
        )

    # ---- tracks -------------------------------------------------------------------------------

    async def GetTrack(
        self, request: catalog_pb2.GetTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        track_id = ids.parse_id_or_uri(request.id, "track")
        market = fields.market(request.market)
        found = await self.store.tracks_by_id([track_id])
        if track_id not in found:
            raise NotFound(f"track {request.id} not found")
        return self.objects.track(found[track_id], market)

    async def BatchGetTracks(
        self, request: catalog_pb2.BatchGetTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetTracksResponse:
        found = await self._several_tracks(request.ids, request.market)
        return catalog_pb2.BatchGetTracksResponse(tracks=[t for t in found if t is not None])

    async def GetSeveralTracks(
        self, request: catalog_pb2.GetSeveralTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralTracksResponse:
        found = await self._several_tracks(request.ids, request.market)
        return catalog_pb2.GetSeveralTracksResponse(tracks=[as_value(t) for t in found])

    async def _several_tracks(self, id_list: str, market_code: str) -> list[catalog_pb2.Track | None]:
        """One entry per requested id, in order: the track, or None when the id is unknown."""
        track_ids = ids.parse_id_list(id_list, "track", limit=MAX_TRACK_IDS)
        market = fields.market(market_code)
        found = await self.store.tracks_by_id(track_ids)
        return [self.objects.track(found[t], market) if t in found else None for t in track_ids]

    async def GetAudioFeatures(
        self, request: catalog_pb2.GetAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.AudioFeatures:
        track_id = ids.parse_id_or_uri(request.id, "track")
        found = await self.store.audio_features([track_id])
        if track_id not in found:
            if await self.store.tracks_by_id([track_id]):
                raise NotFound(f"track {request.id} has no audio features yet (its audio is not ingested)")
            raise NotFound(f"track {request.id} not found")
        duration, features = found[track_id]
        return self.objects.audio_features(track_id, duration, features)

    async def BatchGetAudioFeatures(
        self, request: catalog_pb2.BatchGetAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetAudioFeaturesResponse:
        found = await self._several_audio_features(request.ids)
        return catalog_pb2.BatchGetAudioFeaturesResponse(audio_features=[f for f in found if f is not None])

    async def GetSeveralAudioFeatures(
        self, request: catalog_pb2.GetSeveralAudioFeaturesRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralAudioFeaturesResponse:
        found = await self._several_audio_features(request.ids)
        return catalog_pb2.GetSeveralAudioFeaturesResponse(audio_features=[as_value(f) for f in found])

    async def _several_audio_features(self, id_list: str) -> list[catalog_pb2.AudioFeatures | None]:
        track_ids = ids.parse_id_list(id_list, "track", limit=MAX_FEATURE_IDS)
        found = await self.store.audio_features(track_ids)
        return [self.objects.audio_features(t, *found[t]) if t in found else None for t in track_ids]

    # ---- albums -------------------------------------------------------------------------------

    async def GetAlbum(
        self, request: catalog_pb2.GetAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        album_id = ids.parse_id_or_uri(request.id, "album")
        market = fields.market(request.market)
        found = await self.store.albums_by_id([album_id], tracks_limit=ALBUM_TRACKS_LIMIT)
        if album_id not in found:
            raise NotFound(f"album {request.id} not found")
        return self.objects.album(found[album_id], market)

    async def BatchGetAlbums(
        self, request: catalog_pb2.BatchGetAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetAlbumsResponse:
        found = await self._several_albums(request.ids, request.market)
        return catalog_pb2.BatchGetAlbumsResponse(albums=[a for a in found if a is not None])

    async def GetSeveralAlbums(
        self, request: catalog_pb2.GetSeveralAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralAlbumsResponse:
        found = await self._several_albums(request.ids, request.market)
        return catalog_pb2.GetSeveralAlbumsResponse(albums=[as_value(a) for a in found])

    async def _several_albums(self, id_list: str, market_code: str) -> list[catalog_pb2.Album | None]:
        album_ids = ids.parse_id_list(id_list, "album", limit=MAX_ALBUM_IDS)
        market = fields.market(market_code)
        found = await self.store.albums_by_id(album_ids, tracks_limit=ALBUM_TRACKS_LIMIT)
        return [self.objects.album(found[a], market) if a in found else None for a in album_ids]

    async def ListAlbumTracks(
        self, request: catalog_pb2.ListAlbumTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.TrackPage:
        album_id = ids.parse_id_or_uri(request.id, "album")
        market = fields.market(request.market)
        window = paging.resolve(
            limit=request.limit,
            offset=request.offset,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        found = await self.store.album_tracks(album_id, window.limit, window.offset)
        if found is None:
            raise NotFound(f"album {request.id} not found")
        records, total = found
        return self.objects.track_page(
            f"/v1/albums/{ids.encode(album_id)}/tracks",
            [self.objects.simple_track(r, market) for r in records],
            window,
            total,
            {"market": market},
        )

    # ---- artists ------------------------------------------------------------------------------

    async def GetArtist(
        self, request: catalog_pb2.GetArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        artist = await self.store.artist(ids.parse_id_or_uri(request.id, "artist"))
        if artist is None:
            raise NotFound(f"artist {request.id} not found")
        return self.objects.artist(artist)

    async def BatchGetArtists(
        self, request: catalog_pb2.BatchGetArtistsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.BatchGetArtistsResponse:
        found = await self._several_artists(request.ids)
        return catalog_pb2.BatchGetArtistsResponse(artists=[a for a in found if a is not None])

    async def GetSeveralArtists(
        self, request: catalog_pb2.GetSeveralArtistsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.GetSeveralArtistsResponse:
        found = await self._several_artists(request.ids)
        return catalog_pb2.GetSeveralArtistsResponse(artists=[as_value(a) for a in found])

    async def _several_artists(self, id_list: str) -> list[catalog_pb2.Artist | None]:
        artist_ids = ids.parse_id_list(id_list, "artist", limit=MAX_ARTIST_IDS)
        found = await self.store.artists_by_id(artist_ids)
        return [self.objects.artist(found[a]) if a in found else None for a in artist_ids]

    async def ListArtistAlbums(
        self, request: catalog_pb2.ListArtistAlbumsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.AlbumPage:
        artist_id = ids.parse_id_or_uri(request.id, "artist")
        groups = fields.include_groups(request.include_groups)
        market = fields.market(request.market)
        window = paging.resolve(
            limit=request.limit,
            offset=request.offset,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        if await self.store.artist(artist_id) is None:
            raise NotFound(f"artist {request.id} not found")
        page, total = await self.store.artist_albums(artist_id, groups, window.limit, window.offset)
        items = []
        for entry in page:
            album = self.objects.simple_album(entry.record.album, entry.record.artists, market)
            album.album_group = entry.group
            items.append(album)
        return self.objects.album_page(
            f"/v1/artists/{ids.encode(artist_id)}/albums",
            items,
            window,
            total,
            {"include_groups": request.include_groups, "market": market},
        )

    async def ListArtistTopTracks(
        self, request: catalog_pb2.ListArtistTopTracksRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListArtistTopTracksResponse:
        artist_id = ids.parse_id_or_uri(request.id, "artist")
        market = fields.market(request.market)
        if await self.store.artist(artist_id) is None:
            raise NotFound(f"artist {request.id} not found")
        records = await self.store.artist_top_tracks(artist_id)
        return catalog_pb2.ListArtistTopTracksResponse(
            tracks=[self.objects.track(r, market) for r in records]
        )

    async def ListGenres(
        self, request: catalog_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ListGenresResponse:
        if request.page_size < 0:
            raise InvalidArgument(f"page_size must be 0 or more, got {request.page_size}")
        if request.page_token and not request.page_token.isdigit():
            raise InvalidArgument(f"invalid page_token {request.page_token!r}")
        genres = await self.store.genres()
        start = int(request.page_token or 0)
        end = start + (request.page_size or len(genres))
        return catalog_pb2.ListGenresResponse(
            genres=genres[start:end], next_page_token=str(end) if end < len(genres) else ""
        )

    # ---- search -------------------------------------------------------------------------------

    async def Search(
        self, request: catalog_pb2.SearchRequest, context: aio.ServicerContext
    ) -> catalog_pb2.SearchResponse:
        query = parse_query(request.q)
        types = parse_types(request.type)
        market = fields.market(request.market)
        window = paging.resolve(
            limit=request.limit,
            offset=request.offset,
            page_size=request.page_size,
            page_token=request.page_token,
            max_offset=MAX_SEARCH_OFFSET,
        )
        # Each type searches and then loads its objects in its own sessions, all types at once.
        found = dict(
            zip(
                types,
                await asyncio.gather(*(self._search_type(kind, query, window) for kind in types)),
                strict=True,
            )
        )
        params = {"q": request.q, "type": request.type, "market": market}
        response = catalog_pb2.SearchResponse()
        if "track" in found:
            total, tracks = found["track"]
            items = [self.objects.track(t, market) for t in tracks]
            response.tracks.CopyFrom(self.objects.track_page("/v1/search", items, window, total, params))
        if "album" in found:
            total, albums = found["album"]
            items = [self.objects.simple_album(a.album, a.artists, market) for a in albums]
            response.albums.CopyFrom(self.objects.album_page("/v1/search", items, window, total, params))
        if "artist" in found:
            total, artists = found["artist"]
            items = [self.objects.artist(a) for a in artists]
            response.artists.CopyFrom(self.objects.artist_page("/v1/search", items, window, total, params))
        return response

    async def _search_type(
        self, kind: str, query: SearchQuery, window: paging.Window
    ) -> tuple[int, list[Any]]:
        """`total` and the page's objects, best first (an object deleted since the search drops out)."""
        hits = await self.search.search(kind, query, window.limit, window.offset)
        load: dict[str, Callable[[Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, Any]]]] = {
            "track": self.store.tracks_by_id,
            "album": self.store.albums_by_id,
            "artist": self.store.artists_by_id,
        }
        objects = await load[kind](hits.ids)
        return hits.total, [objects[key] for key in hits.ids if key in objects]

    # ---- writes -------------------------------------------------------------------------------

    def _editor(self) -> CatalogEditor:
        if self.editor is None:
            raise NotImplementedError  # a read-only deployment: UNIMPLEMENTED
        Permissions.check_writer()  # 401/403 before anything about the request is judged
        return self.editor

    async def CreateArtist(
        self, request: catalog_pb2.CreateArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        editor = self._editor()
        writes.no_managers(request.manager_user_ids)
        draft = writes.ArtistDraft(
            name=writes.name(request.name),
            genres=writes.genres(request.genres),
            images=writes.images([(i.url, i.height, i.width) for i in request.images]),
        )
        artist = await editor.create_artist(_write_request("CreateArtist", request), draft)
        return self.objects.artist(artist)

    async def UpdateArtist(
        self, request: catalog_pb2.UpdateArtistRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Artist:
        editor = self._editor()
        artist_id = ids.parse_id_or_uri(request.id, "artist")
        changed = writes.fields_to_change(
            request.update_mask.paths,
            _present(request, ARTIST_FIELDS),
            ARTIST_FIELDS,
        )
        if "manager_user_ids" in changed:
            writes.no_managers(request.manager_user_ids or ["-"])
        changes = writes.ArtistChanges(
            name=writes.name(request.name) if "name" in changed else None,
            genres=writes.genres(request.genres) if "genres" in changed else None,
            images=(
                writes.images([(i.url, i.height, i.width) for i in request.images])
                if "images" in changed
                else None
            ),
        )
        artist = await editor.update_artist(_write_request("UpdateArtist", request), artist_id, changes)
        return self.objects.artist(artist)

    async def CreateAlbum(
        self, request: catalog_pb2.CreateAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        editor = self._editor()
        if request.release_date_precision and not request.release_date:
            raise InvalidArgument("release_date_precision: given without a release_date")
        draft = writes.AlbumDraft(
            name=writes.name(request.name),
            album_type=writes.album_type(request.album_type),
            artist_ids=writes.artist_list(request.artist_ids, required=True),
            release_date=(
                writes.release_date(request.release_date, request.release_date_precision)
                if request.release_date
                else None
            ),
            genres=writes.genres(request.genres),
            label=writes.label(request.label),
            images=writes.images([(i.url, i.height, i.width) for i in request.images]),
            copyrights=writes.copyrights([(c.text, c.type) for c in request.copyrights]),
            upc=writes.upc(request.upc),
            markets=writes.markets(request.available_markets),
        )
        record = await editor.create_album(_write_request("CreateAlbum", request), draft)
        return self.objects.album(record)

    async def UpdateAlbum(
        self, request: catalog_pb2.UpdateAlbumRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Album:
        editor = self._editor()
        album_id = ids.parse_id_or_uri(request.id, "album")
        changed = writes.fields_to_change(
            request.update_mask.paths, _present(request, ALBUM_FIELDS), ALBUM_FIELDS
        )
        if "release_date_precision" in changed and "release_date" not in changed:
            raise InvalidArgument("release_date_precision: change it together with release_date")
        release, clear_release = None, False
        if "release_date" in changed:
            if request.release_date:
                precision = request.release_date_precision if "release_date_precision" in changed else ""
                release = writes.release_date(request.release_date, precision)
            else:
                clear_release = True
        label = writes.label(request.label) if "label" in changed else None
        changes = writes.AlbumChanges(
            name=writes.name(request.name) if "name" in changed else None,
            album_type=writes.album_type(request.album_type) if "album_type" in changed else None,
            artist_ids=(
                writes.artist_list(request.artist_ids, required=True) if "artist_ids" in changed else None
            ),
            release_date=release,
            clear_release_date=clear_release,
            label=label,
            clear_label="label" in changed and label is None,
            genres=writes.genres(request.genres) if "genres" in changed else None,
            images=(
                writes.images([(i.url, i.height, i.width) for i in request.images])
                if "images" in changed
                else None
            ),
            copyrights=(
                writes.copyrights([(c.text, c.type) for c in request.copyrights])
                if "copyrights" in changed
                else None
            ),
            markets=writes.markets(request.available_markets) if "available_markets" in changed else None,
        )
        record = await editor.update_album(_write_request("UpdateAlbum", request), album_id, changes)
        return self.objects.album(record)

    async def CreateTrack(
        self, request: catalog_pb2.CreateTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        editor = self._editor()
        if not request.album_id:
            raise InvalidArgument("album_id: required")
        draft = writes.TrackDraft(
            album_id=ids.parse_id_or_uri(request.album_id, "album"),
            name=writes.name(request.name),
            artist_ids=writes.artist_list(request.artist_ids, required=False),
            track_number=writes.track_number(request.track_number),
            disc_number=writes.disc_number(request.disc_number or 1),
            explicit=request.explicit,
            isrc=writes.isrc(request.isrc),
        )
        record = await editor.create_track(_write_request("CreateTrack", request), draft)
        return self.objects.track(record)

    async def UpdateTrack(
        self, request: catalog_pb2.UpdateTrackRequest, context: aio.ServicerContext
    ) -> catalog_pb2.Track:
        editor = self._editor()
        track_id = ids.parse_id_or_uri(request.id, "track")
        changed = writes.fields_to_change(
            request.update_mask.paths, _present(request, TRACK_FIELDS), TRACK_FIELDS
        )
        isrc = writes.isrc(request.isrc) if "isrc" in changed else None
        changes = writes.TrackChanges(
            name=writes.name(request.name) if "name" in changed else None,
            track_number=writes.track_number(request.track_number) if "track_number" in changed else None,
            disc_number=writes.disc_number(request.disc_number) if "disc_number" in changed else None,
            explicit=request.explicit if "explicit" in changed else None,
            isrc=isrc,
            clear_isrc="isrc" in changed and isrc is None,
            artist_ids=(
                writes.artist_list(request.artist_ids, required=True) if "artist_ids" in changed else None
            ),
        )
        record = await editor.update_track(_write_request("UpdateTrack", request), track_id, changes)
        return self.objects.track(record)


def _present(request: Message, names: Sequence[str]) -> set[str]:
    """The fields a request sets: optional scalars that are present, repeated fields that are non-empty."""
    present = set()
    for name in names:
        field = request.DESCRIPTOR.fields_by_name[name]
        if field.is_repeated:
            if len(getattr(request, name)):
                present.add(name)
        elif field.has_presence and request.HasField(name):
            present.add(name)
    return present


def _write_request(rpc: str, request: Message) -> WriteRequest:
    """The retry identity of a write: its request_id (or Idempotency-Key header) and a content hash."""
    key = writes.request_id(current_idempotency_key(getattr(request, "request_id", "")))
    fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return WriteRequest(rpc=rpc, request_id=key, fingerprint=fingerprint)
