"""LibraryService: protobuf in, one domain call, protobuf out.

Each method reads its request into domain values (ids, track URIs, the page asked for, the
idempotency key: the request's `request_id`, else the Idempotency-Key header), calls the playlists
or saved-items domain, and builds Spotify's objects from the answer. Writes need a signed-in
caller, which is checked before the request is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import struct_pb2
from grpc import aio
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc

from library_svc import rules
from library_svc.objects import LibraryObjects
from library_svc.playlists import Playlists, Reorder, Replace, logged_playlist_update
from library_svc.saved import SavedItems
from meshkit import ids, user_export
from meshkit.context import Caller, current_caller, current_idempotency_key
from meshkit.errors import InvalidArgument
from meshkit.paging import request_window

ITEMS_MAX_PAGE = 100
LIST_MAX_PAGE = 50
DEFAULT_PAGE = 20


@dataclass(frozen=True)
class LibraryServicer(library_pb2_grpc.LibraryServiceServicer):
    playlists: Playlists
    saved: SavedItems
    objects: LibraryObjects
    export: user_export.Exporter

    # ---- data export -----------------------------------------------------------------------

    async def ExportUserData(
        self, request: common_pb2.ExportUserDataRequest, context: aio.ServicerContext
    ) -> common_pb2.ExportUserDataResponse:
        return await user_export.answer(request, self.export)

    # ---- playlists -------------------------------------------------------------------------

    async def CreatePlaylist(
        self, request: library_pb2.CreatePlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        caller = _signed_in()
        created = await self.playlists.create(
            caller,
            for_user=ids.parse_id_or_uri(request.user_id, "user") if request.user_id else None,
            name=request.name,
            description=request.description,
            public=request.public if request.HasField("public") else None,
            collaborative=request.collaborative,
            key=current_idempotency_key(request.request_id),
        )
        return self.objects.playlist(created)

    async def GetPlaylist(
        self, request: library_pb2.GetPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        return self.objects.playlist(await self.playlists.get(current_caller(), playlist_id))

    async def UpdatePlaylist(
        self, request: library_pb2.UpdatePlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        caller = _signed_in()
        async with logged_playlist_update(caller, "details", request.id):
            updated = await self.playlists.update(
                caller,
                ids.parse_id_or_uri(request.id, "playlist"),
                name=request.name if request.HasField("name") else None,
                description=request.description if request.HasField("description") else None,
                public=request.public if request.HasField("public") else None,
                collaborative=request.collaborative if request.HasField("collaborative") else None,
                key=current_idempotency_key(),
            )
        return self.objects.playlist(updated)

    async def ListMyPlaylists(
        self, request: library_pb2.ListMyPlaylistsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistPage:
        caller = current_caller()
        user_id = caller.require_user()
        window = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        listed = await self.playlists.of_user(caller, user_id, window)
        return self.objects.playlist_page("/v1/me/playlists", listed)

    async def ListUserPlaylists(
        self, request: library_pb2.ListUserPlaylistsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistPage:
        user_id = ids.parse_id_or_uri(request.user_id, "user")
        window = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        listed = await self.playlists.of_user(current_caller(), user_id, window)
        return self.objects.playlist_page(f"/v1/users/{ids.encode(user_id)}/playlists", listed)

    # ---- playlist items --------------------------------------------------------------------

    async def ListPlaylistItems(
        self, request: library_pb2.ListPlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistItemPage:
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        window = request_window(request, default=DEFAULT_PAGE, maximum=ITEMS_MAX_PAGE)
        return self.objects.item_page(await self.playlists.items(current_caller(), playlist_id, window))

    async def AddPlaylistItems(
        self, request: library_pb2.AddPlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.AddPlaylistItemsResponse:
        caller = _signed_in()
        async with logged_playlist_update(caller, "add_items", request.id):
            playlist_id = ids.parse_id_or_uri(request.id, "playlist")
            uris, position = _items_to_add(request)
            track_ids = rules.parse_track_uris(uris)
            key = current_idempotency_key(request.request_id)
            snapshot = await self.playlists.add_items(caller, playlist_id, track_ids, position, key)
        return library_pb2.AddPlaylistItemsResponse(snapshot_id=snapshot)

    async def UpdatePlaylistItems(
        self, request: library_pb2.UpdatePlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.UpdatePlaylistItemsResponse:
        caller = _signed_in()
        async with logged_playlist_update(caller, "update_items", request.id):
            playlist_id = ids.parse_id_or_uri(request.id, "playlist")
            change = _items_change(request)
            key = current_idempotency_key(request.request_id)
            snapshot = await self.playlists.update_items(
                caller, playlist_id, change, request.snapshot_id, key
            )
        return library_pb2.UpdatePlaylistItemsResponse(snapshot_id=snapshot)

    async def RemovePlaylistItems(
        self, request: library_pb2.RemovePlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.RemovePlaylistItemsResponse:
        caller = _signed_in()
        async with logged_playlist_update(caller, "remove_items", request.id):
            playlist_id = ids.parse_id_or_uri(request.id, "playlist")
            # `tracks` is the older name of `items`; either (or both) may be used.
            track_ids = rules.parse_track_uris(ref.uri for ref in [*request.items, *request.tracks])
            key = current_idempotency_key(request.request_id)
            snapshot = await self.playlists.remove_items(
                caller, playlist_id, track_ids, request.snapshot_id, key
            )
        return library_pb2.RemovePlaylistItemsResponse(snapshot_id=snapshot)

    # ---- collaborators ---------------------------------------------------------------------

    async def AddPlaylistCollaborator(
        self, request: library_pb2.AddPlaylistCollaboratorRequest, context: aio.ServicerContext
    ) -> library_pb2.AddPlaylistCollaboratorResponse:
        caller = _signed_in()
        collaborators = await self.playlists.add_collaborator(
            caller,
            ids.parse_id_or_uri(request.playlist_id, "playlist"),
            ids.parse_id_or_uri(request.user_id, "user"),
            current_idempotency_key(request.request_id),
        )
        return library_pb2.AddPlaylistCollaboratorResponse(collaborator_ids=map(ids.encode, collaborators))

    async def RemovePlaylistCollaborator(
        self, request: library_pb2.RemovePlaylistCollaboratorRequest, context: aio.ServicerContext
    ) -> library_pb2.RemovePlaylistCollaboratorResponse:
        caller = _signed_in()
        collaborators = await self.playlists.remove_collaborator(
            caller,
            ids.parse_id_or_uri(request.playlist_id, "playlist"),
            ids.parse_id_or_uri(request.user_id, "user"),
            current_idempotency_key(),
        )
        return library_pb2.RemovePlaylistCollaboratorResponse(collaborator_ids=map(ids.encode, collaborators))

    # ---- followers -------------------------------------------------------------------------

    async def FollowPlaylist(
        self, request: library_pb2.FollowPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.FollowPlaylistResponse:
        caller = _signed_in()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        await self.playlists.follow(caller, playlist_id, current_idempotency_key())
        return library_pb2.FollowPlaylistResponse()

    async def UnfollowPlaylist(
        self, request: library_pb2.UnfollowPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.UnfollowPlaylistResponse:
        caller = _signed_in()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        await self.playlists.unfollow(caller, playlist_id, current_idempotency_key())
        return library_pb2.UnfollowPlaylistResponse()

    # ---- saved items -----------------------------------------------------------------------

    async def SaveLibraryItems(
        self, request: library_pb2.SaveLibraryItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.SaveLibraryItemsResponse:
        caller = _signed_in()
        items = rules.parse_library_uris(request.uris)
        await self.saved.save(caller, items, current_idempotency_key())
        return library_pb2.SaveLibraryItemsResponse()

    async def RemoveLibraryItems(
        self, request: library_pb2.RemoveLibraryItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.RemoveLibraryItemsResponse:
        caller = _signed_in()
        items = rules.parse_library_uris(request.uris)
        await self.saved.remove(caller, items, current_idempotency_key())
        return library_pb2.RemoveLibraryItemsResponse()

    async def CheckLibraryContains(
        self, request: library_pb2.CheckLibraryContainsRequest, context: aio.ServicerContext
    ) -> struct_pb2.ListValue:
        caller = _signed_in()
        items = rules.parse_library_uris(request.uris)
        answer = struct_pb2.ListValue()
        for contained in await self.saved.contains(caller, items):
            answer.values.add(bool_value=contained)
        return answer

    async def ListSavedTracks(
        self, request: library_pb2.ListSavedTracksRequest, context: aio.ServicerContext
    ) -> library_pb2.SavedTrackPage:
        caller = _signed_in()
        window = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        return self.objects.saved_track_page(await self.saved.tracks(caller, window))

    async def ListSavedAlbums(
        self, request: library_pb2.ListSavedAlbumsRequest, context: aio.ServicerContext
    ) -> library_pb2.SavedAlbumPage:
        caller = _signed_in()
        window = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        return self.objects.saved_album_page(await self.saved.albums(caller, window))

    async def ListFollowedArtists(
        self, request: library_pb2.ListFollowedArtistsRequest, context: aio.ServicerContext
    ) -> library_pb2.ListFollowedArtistsResponse:
        caller = _signed_in()
        if request.type != "artist":
            raise InvalidArgument(f"type must be 'artist', got {request.type!r}")
        limit = request.limit or request.page_size or DEFAULT_PAGE
        if not 1 <= limit <= LIST_MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {LIST_MAX_PAGE}, got {limit}")
        cursor = request.page_token or request.after
        after = ids.parse_id_or_uri(cursor, "artist") if cursor else None
        found = await self.saved.followed_artists(caller, limit, after)
        return self.objects.followed_artists(limit, cursor, found)


def _signed_in() -> Caller:
    """The caller of an RPC that needs a user: an anonymous one is refused before its request is read."""
    caller = current_caller()
    caller.require_user()
    return caller


def _items_change(request: library_pb2.UpdatePlaylistItemsRequest) -> Reorder | Replace:
    """A reorder (range_start and insert_before) or a replace (uris), never both."""
    reorder = request.HasField("range_start") or request.HasField("insert_before")
    if reorder and request.uris:
        raise InvalidArgument("give either uris (replace) or range_start/insert_before (reorder), not both")
    if reorder and not (request.HasField("range_start") and request.HasField("insert_before")):
        raise InvalidArgument("a reorder needs both range_start and insert_before")
    if reorder:
        length = request.range_length if request.HasField("range_length") else 1
        return Reorder(request.range_start, request.insert_before, length)
    track_ids = rules.parse_track_uris(request.uris)
    if not track_ids:
        # proto3 cannot tell `{"uris": []}` from a body that forgot them: refusing is safer than
        # wiping the playlist. Emptying it is an explicit DELETE of its items.
        raise InvalidArgument("give uris to replace the items, or range_start and insert_before to reorder")
    return Replace(track_ids)


def _items_to_add(request: library_pb2.AddPlaylistItemsRequest) -> tuple[list[str], int | None]:
    """URIs and position from the typed fields (gRPC, query string) and the JSON body.

    The body is a bare array of URIs or {"uris": [...], "position": n}. As in Spotify's API,
    URIs in the query string win over those in the body; an explicit position wins likewise.
    """
    uris: list[str] = list(request.uris)
    position = request.position if request.HasField("position") else None
    if not request.HasField("body"):
        return uris, position
    body = request.body
    kind = body.WhichOneof("kind")
    body_uris: Sequence[struct_pb2.Value]
    body_position: struct_pb2.Value | None
    if kind == "list_value":
        body_uris, body_position = body.list_value.values, None
    elif kind == "struct_value":
        fields = body.struct_value.fields
        unknown = sorted(set(fields) - {"uris", "position"})
        if unknown:
            raise InvalidArgument(f"body: unknown field(s) {', '.join(unknown)}; expected uris and position")
        listed = fields.get("uris")
        if listed is not None and listed.WhichOneof("kind") != "list_value":
            raise InvalidArgument("body: uris must be an array of spotify:track:<id> URIs")
        body_uris = listed.list_value.values if listed is not None else []
        body_position = fields.get("position")
        if body_position is not None and body_position.WhichOneof("kind") == "null_value":
            body_position = None  # "position": null means append, as if it were absent
    elif kind == "null_value":
        return uris, position
    else:
        raise InvalidArgument('body: expected an array of URIs or {"uris": [...], "position": n}')
    if any(v.WhichOneof("kind") != "string_value" for v in body_uris):
        raise InvalidArgument("body: every URI must be a string")
    if body_position is not None and position is None:
        number = body_position.number_value
        if body_position.WhichOneof("kind") != "number_value" or number != int(number):
            raise InvalidArgument("body: position must be a whole number")
        position = int(number)
    return (uris or [v.string_value for v in body_uris]), position
