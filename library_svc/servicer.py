"""LibraryService: protobuf in, domain calls, protobuf out.

Each write runs through `_once`, so a retry with the same request id / Idempotency-Key gets the
first answer (meshkit.idempotency). Each change to a playlist runs inside `store.edit`, which holds
the playlist's row lock while permissions, the snapshot and positions are checked and changed.
Input is validated (and track URIs resolved against the catalog) before anything is written, so a
bad request changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import TypeVar

from google.protobuf import struct_pb2
from google.protobuf.message import Message
from grpc import aio
from spotify.common.v1 import common_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc

from library_svc import domain
from library_svc.clients import Neighbours
from library_svc.domain import Sharing, require_edit, require_owner, require_view, snapshot_id
from library_svc.models import Playlist
from library_svc.objects import LibraryObjects
from library_svc.paging import Window, request_window
from library_svc.reorder import plan_move
from library_svc.store import KEEP, LibraryStore, PlaylistView
from meshkit import ids
from meshkit.context import current_caller, current_idempotency_key
from meshkit.errors import InvalidArgument, NotFound, PermissionDenied
from meshkit.idempotency import Idempotency

FIRST_PAGE = 100  # a playlist object embeds its first 100 items, as Spotify's does
ITEMS_MAX_PAGE = 100
LIST_MAX_PAGE = 50
DEFAULT_PAGE = 20

M = TypeVar("M", bound=Message)


class LibraryServicer(library_pb2_grpc.LibraryServiceServicer):
    def __init__(
        self,
        store: LibraryStore,
        neighbours: Neighbours,
        objects: LibraryObjects,
        idempotency: Idempotency,
    ) -> None:
        self.store = store
        self.neighbours = neighbours
        self.objects = objects
        self.idempotency = idempotency

    # ---- playlists -------------------------------------------------------------------------

    async def CreatePlaylist(
        self, request: library_pb2.CreatePlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        owner_id = current_caller().require_user()
        if request.user_id and ids.parse_id_or_uri(request.user_id, "user") != owner_id:
            raise PermissionDenied("you can only create playlists for yourself")
        name = domain.clean_name(request.name)
        description = domain.clean_description(request.description)
        sharing = domain.resolve_sharing(
            None, request.public if request.HasField("public") else None, request.collaborative
        )

        async def write() -> library_pb2.Playlist:
            playlist = await self.store.create_playlist(
                owner_id, name, description, sharing.public, sharing.collaborative
            )
            owner = await self.neighbours.user(owner_id)
            empty = self.objects.item_page(playlist, Window(0, FIRST_PAGE), [], {}, {})
            return self.objects.playlist(playlist, owner, [], empty)

        return await self._once("CreatePlaylist", request, library_pb2.Playlist, write)

    async def GetPlaylist(
        self, request: library_pb2.GetPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        return await self._full_playlist(ids.parse_id_or_uri(request.id, "playlist"))

    async def UpdatePlaylist(
        self, request: library_pb2.UpdatePlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.Playlist:
        caller = current_caller()
        user_id = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        name = domain.clean_name(request.name) if request.HasField("name") else None
        description = (
            domain.clean_description(request.description) if request.HasField("description") else KEEP
        )
        public = request.public if request.HasField("public") else None
        collaborative = request.collaborative if request.HasField("collaborative") else None

        async def write() -> library_pb2.Playlist:
            async with self.store.edit(playlist_id) as tx:
                if public is None and collaborative is None:
                    require_edit(tx.playlist, tx.collaborators, caller)  # the seed's canEditPlaylist
                else:
                    require_owner(tx.playlist, tx.collaborators, caller)  # sharing is the owner's call
                current = Sharing(tx.playlist.is_public, tx.playlist.is_collaborative)
                sharing = domain.resolve_sharing(current, public, collaborative)
                tx.set_details(
                    name=name,
                    description=description,
                    public=sharing.public,
                    collaborative=sharing.collaborative,
                )
            if sharing != current:  # who may see and edit it changed: a permission change, audited
                await self.neighbours.audit(
                    actor=user_id,
                    action="playlist.update_sharing",
                    resource_type="playlist",
                    resource_id=playlist_id,
                    details={"before": asdict(current), "after": asdict(sharing)},
                    success=True,
                )
            return await self._full_playlist(playlist_id)

        return await self._once("UpdatePlaylist", request, library_pb2.Playlist, write)

    async def ListMyPlaylists(
        self, request: library_pb2.ListMyPlaylistsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistPage:
        user_id = current_caller().require_user()
        page = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        playlists, total = await self.store.my_playlists(user_id, page.offset, page.limit)
        return self.objects.playlist_page("/v1/me/playlists", page, total, await self._simplified(playlists))

    async def ListUserPlaylists(
        self, request: library_pb2.ListUserPlaylistsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistPage:
        user_id = ids.parse_id_or_uri(request.user_id, "user")
        page = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        if user_id == current_caller().user_id:  # your own list: private ones too, as /v1/me/playlists
            playlists, total = await self.store.my_playlists(user_id, page.offset, page.limit)
        else:
            playlists, total = await self.store.public_playlists(user_id, page.offset, page.limit)
        base = f"/v1/users/{ids.encode(user_id)}/playlists"
        return self.objects.playlist_page(base, page, total, await self._simplified(playlists))

    # ---- playlist items --------------------------------------------------------------------

    async def ListPlaylistItems(
        self, request: library_pb2.ListPlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.PlaylistItemPage:
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        page = request_window(request, default=DEFAULT_PAGE, maximum=ITEMS_MAX_PAGE)
        view = await self.store.playlist_view(playlist_id, page.offset, page.limit)
        view = self._visible(view)
        tracks = await self.neighbours.tracks(item.track_id for item in view.items)
        return self.objects.item_page(view.playlist, page, view.items, tracks, self._adders(view))

    async def AddPlaylistItems(
        self, request: library_pb2.AddPlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.AddPlaylistItemsResponse:
        caller = current_caller()
        user_id = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        uris, position = _items_to_add(request)
        track_ids = domain.parse_track_uris(uris)
        if not track_ids:
            raise InvalidArgument("uris: at least one track URI is required")

        async def write() -> library_pb2.AddPlaylistItemsResponse:
            await self._editable(playlist_id)  # cheap check first: no catalog calls for a 403/404
            await self._require_tracks(track_ids)
            async with self.store.edit(playlist_id) as tx:
                require_edit(tx.playlist, tx.collaborators, caller)
                present = await tx.present(track_ids)
                new = [t for t in track_ids if t not in present]  # adding a present track is a no-op
                domain.check_room(tx.playlist.item_count, len(new))
                at = domain.check_insert_position(position, tx.playlist.item_count)
                await tx.insert(new, at, user_id)
                return library_pb2.AddPlaylistItemsResponse(snapshot_id=snapshot_id(tx.playlist))

        return await self._once("AddPlaylistItems", request, library_pb2.AddPlaylistItemsResponse, write)

    async def UpdatePlaylistItems(
        self, request: library_pb2.UpdatePlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.UpdatePlaylistItemsResponse:
        caller = current_caller()
        user_id = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        reorder = request.HasField("range_start") or request.HasField("insert_before")
        if reorder and request.uris:
            raise InvalidArgument(
                "give either uris (replace) or range_start/insert_before (reorder), not both"
            )
        if reorder and not (request.HasField("range_start") and request.HasField("insert_before")):
            raise InvalidArgument("a reorder needs both range_start and insert_before")
        track_ids = [] if reorder else domain.parse_track_uris(request.uris)
        if not reorder and not track_ids:
            # proto3 cannot tell `{"uris": []}` from a body that forgot them: refusing is safer than
            # wiping the playlist. Emptying it is an explicit DELETE of its items.
            raise InvalidArgument(
                "give uris to replace the items, or range_start and insert_before to reorder"
            )
        length = request.range_length if request.HasField("range_length") else 1

        async def write() -> library_pb2.UpdatePlaylistItemsResponse:
            await self._editable(playlist_id)
            if not reorder:
                await self._require_tracks(track_ids)
            async with self.store.edit(playlist_id) as tx:
                require_edit(tx.playlist, tx.collaborators, caller)
                domain.check_snapshot(tx.playlist, request.snapshot_id)
                if reorder:
                    shifts = plan_move(
                        tx.playlist.item_count, request.range_start, request.insert_before, length
                    )
                    await tx.move(shifts)
                else:
                    await tx.replace(track_ids, user_id)
                return library_pb2.UpdatePlaylistItemsResponse(snapshot_id=snapshot_id(tx.playlist))

        return await self._once(
            "UpdatePlaylistItems", request, library_pb2.UpdatePlaylistItemsResponse, write
        )

    async def RemovePlaylistItems(
        self, request: library_pb2.RemovePlaylistItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.RemovePlaylistItemsResponse:
        caller = current_caller()
        caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")
        # `tracks` is the older name of `items`; either (or both) may be used.
        track_ids = domain.parse_track_uris(ref.uri for ref in [*request.items, *request.tracks])
        if not track_ids:
            raise InvalidArgument('items: at least one {"uri": "spotify:track:<id>"} is required')

        async def write() -> library_pb2.RemovePlaylistItemsResponse:
            async with self.store.edit(playlist_id) as tx:
                require_edit(tx.playlist, tx.collaborators, caller)
                domain.check_snapshot(tx.playlist, request.snapshot_id)
                await tx.remove(track_ids)  # absent tracks are skipped: deletes are idempotent
                return library_pb2.RemovePlaylistItemsResponse(snapshot_id=snapshot_id(tx.playlist))

        return await self._once(
            "RemovePlaylistItems", request, library_pb2.RemovePlaylistItemsResponse, write
        )

    # ---- collaborators ---------------------------------------------------------------------

    async def AddPlaylistCollaborator(
        self, request: library_pb2.AddPlaylistCollaboratorRequest, context: aio.ServicerContext
    ) -> library_pb2.AddPlaylistCollaboratorResponse:
        caller = current_caller()
        actor = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.playlist_id, "playlist")
        user_id = ids.parse_id_or_uri(request.user_id, "user")

        async def write() -> library_pb2.AddPlaylistCollaboratorResponse:
            async with self._audited(actor, "playlist.add_collaborator", playlist_id, user_id):
                found = await self.store.playlist(playlist_id)
                playlist = require_owner(*(found or (None, [])), caller)
                if user_id == playlist.owner_id:
                    raise InvalidArgument("the owner edits the playlist already")
                await self.neighbours.require_user(user_id)
                async with self.store.edit(playlist_id) as tx:
                    require_owner(tx.playlist, tx.collaborators, caller)
                    await tx.add_collaborator(user_id, actor)
                    collaborators = list(tx.collaborators)
            return library_pb2.AddPlaylistCollaboratorResponse(
                collaborator_ids=[ids.encode(c) for c in collaborators]
            )

        return await self._once(
            "AddPlaylistCollaborator", request, library_pb2.AddPlaylistCollaboratorResponse, write
        )

    async def RemovePlaylistCollaborator(
        self, request: library_pb2.RemovePlaylistCollaboratorRequest, context: aio.ServicerContext
    ) -> library_pb2.RemovePlaylistCollaboratorResponse:
        caller = current_caller()
        actor = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.playlist_id, "playlist")
        user_id = ids.parse_id_or_uri(request.user_id, "user")

        async def write() -> library_pb2.RemovePlaylistCollaboratorResponse:
            async with (
                self._audited(actor, "playlist.remove_collaborator", playlist_id, user_id),
                self.store.edit(playlist_id) as tx,
            ):
                require_view(tx.playlist, tx.collaborators, caller)
                if actor not in (tx.playlist.owner_id, user_id):  # the owner, or leaving yourself
                    raise PermissionDenied("only the owner can remove other collaborators")
                await tx.remove_collaborator(user_id)
                collaborators = list(tx.collaborators)
            return library_pb2.RemovePlaylistCollaboratorResponse(
                collaborator_ids=[ids.encode(c) for c in collaborators]
            )

        return await self._once(
            "RemovePlaylistCollaborator", request, library_pb2.RemovePlaylistCollaboratorResponse, write
        )

    # ---- followers -------------------------------------------------------------------------

    async def FollowPlaylist(
        self, request: library_pb2.FollowPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.FollowPlaylistResponse:
        caller = current_caller()
        user_id = caller.require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")

        async def write() -> library_pb2.FollowPlaylistResponse:
            found = await self.store.playlist(playlist_id)
            require_view(*(found or (None, [])), caller)
            await self.store.follow(playlist_id, user_id)
            return library_pb2.FollowPlaylistResponse()

        return await self._once("FollowPlaylist", request, library_pb2.FollowPlaylistResponse, write)

    async def UnfollowPlaylist(
        self, request: library_pb2.UnfollowPlaylistRequest, context: aio.ServicerContext
    ) -> library_pb2.UnfollowPlaylistResponse:
        user_id = current_caller().require_user()
        playlist_id = ids.parse_id_or_uri(request.id, "playlist")

        async def write() -> library_pb2.UnfollowPlaylistResponse:
            if await self.store.playlist(playlist_id) is None:
                raise NotFound("playlist not found")
            await self.store.unfollow(playlist_id, user_id)  # unfollowing twice is fine
            return library_pb2.UnfollowPlaylistResponse()

        return await self._once("UnfollowPlaylist", request, library_pb2.UnfollowPlaylistResponse, write)

    # ---- saved items -----------------------------------------------------------------------

    async def SaveLibraryItems(
        self, request: library_pb2.SaveLibraryItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.SaveLibraryItemsResponse:
        """Save tracks, albums and artists (following an artist); saving a playlist follows it."""
        caller = current_caller()
        user_id = caller.require_user()
        items = domain.parse_library_uris(request.uris)

        async def write() -> library_pb2.SaveLibraryItemsResponse:
            await self._require_library_items(items)
            await self.store.save(user_id, [(k, i) for k, i in items if k != "playlist"])
            for kind, item_id in items:
                if kind == "playlist":
                    await self.store.follow(item_id, user_id)
            return library_pb2.SaveLibraryItemsResponse()

        return await self._once("SaveLibraryItems", request, library_pb2.SaveLibraryItemsResponse, write)

    async def RemoveLibraryItems(
        self, request: library_pb2.RemoveLibraryItemsRequest, context: aio.ServicerContext
    ) -> library_pb2.RemoveLibraryItemsResponse:
        user_id = current_caller().require_user()
        items = domain.parse_library_uris(request.uris)

        async def write() -> library_pb2.RemoveLibraryItemsResponse:
            await self.store.unsave(user_id, [(k, i) for k, i in items if k != "playlist"])
            for kind, item_id in items:
                if kind == "playlist":
                    await self.store.unfollow(item_id, user_id)
            return library_pb2.RemoveLibraryItemsResponse()

        return await self._once("RemoveLibraryItems", request, library_pb2.RemoveLibraryItemsResponse, write)

    async def CheckLibraryContains(
        self, request: library_pb2.CheckLibraryContainsRequest, context: aio.ServicerContext
    ) -> struct_pb2.ListValue:
        user_id = current_caller().require_user()
        items = domain.parse_library_uris(request.uris)
        saved = await self.store.saved(user_id, [(k, i) for k, i in items if k != "playlist"])
        followed = await self.store.following(user_id, [i for k, i in items if k == "playlist"])
        answer = struct_pb2.ListValue()
        for kind, item_id in items:
            answer.values.add(
                bool_value=item_id in followed if kind == "playlist" else (kind, item_id) in saved
            )
        return answer

    async def ListSavedTracks(
        self, request: library_pb2.ListSavedTracksRequest, context: aio.ServicerContext
    ) -> library_pb2.SavedTrackPage:
        user_id = current_caller().require_user()
        page = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        saved, total = await self.store.saved_page(user_id, "track", page.offset, page.limit)
        tracks = await self.neighbours.tracks(s.item_id for s in saved)
        return self.objects.saved_track_page(page, total, saved, tracks)

    async def ListSavedAlbums(
        self, request: library_pb2.ListSavedAlbumsRequest, context: aio.ServicerContext
    ) -> library_pb2.SavedAlbumPage:
        user_id = current_caller().require_user()
        page = request_window(request, default=DEFAULT_PAGE, maximum=LIST_MAX_PAGE)
        saved, total = await self.store.saved_page(user_id, "album", page.offset, page.limit)
        albums = await self.neighbours.albums(s.item_id for s in saved)
        return self.objects.saved_album_page(page, total, saved, albums)

    async def ListFollowedArtists(
        self, request: library_pb2.ListFollowedArtistsRequest, context: aio.ServicerContext
    ) -> library_pb2.ListFollowedArtistsResponse:
        user_id = current_caller().require_user()
        if request.type != "artist":
            raise InvalidArgument(f"type must be 'artist', got {request.type!r}")
        limit = request.limit or request.page_size or DEFAULT_PAGE
        if not 1 <= limit <= LIST_MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {LIST_MAX_PAGE}, got {limit}")
        cursor = request.page_token or request.after
        after = ids.parse_id_or_uri(cursor, "artist") if cursor else None
        found, total = await self.store.saved_after(user_id, "artist", after, limit + 1)
        page_ids = found[:limit]
        artists = await self.neighbours.artists(page_ids)
        return self.objects.followed_artists(limit, cursor, total, page_ids, artists, len(found) > limit)

    # ---- helpers ---------------------------------------------------------------------------

    async def _once(
        self, rpc: str, request: M | Message, response_type: type[M], write: Callable[[], Awaitable[M]]
    ) -> M:
        """Run a write once per idempotency key (request_id field, else the Idempotency-Key header)."""
        user_id = current_caller().require_user()
        key = current_idempotency_key(getattr(request, "request_id", ""))
        return await self.idempotency.run(
            f"library.{rpc}", ids.encode(user_id), key, request, response_type, write
        )

    async def _full_playlist(self, playlist_id: uuid.UUID) -> library_pb2.Playlist:
        view = self._visible(await self.store.playlist_view(playlist_id, 0, FIRST_PAGE))
        tracks, owner = await asyncio.gather(
            self.neighbours.tracks(item.track_id for item in view.items),
            self.neighbours.user(view.playlist.owner_id),
        )
        adders = self._adders(view)
        adders[view.playlist.owner_id] = owner
        items = self.objects.item_page(view.playlist, Window(0, FIRST_PAGE), view.items, tracks, adders)
        return self.objects.playlist(view.playlist, owner, view.collaborators, items)

    def _visible(self, view: PlaylistView | None) -> PlaylistView:
        if view is None:
            raise NotFound("playlist not found")
        require_view(view.playlist, view.collaborators, current_caller())
        return view

    def _adders(self, view: PlaylistView) -> dict[uuid.UUID, common_pb2.PublicUser]:
        """`added_by` objects: Spotify's minimal user reference, built without a call to auth."""
        adders = {item.added_by for item in view.items if item.added_by is not None}
        return {user_id: self.neighbours.user_ref(user_id) for user_id in adders}

    async def _simplified(self, playlists: Sequence[Playlist]) -> list[library_pb2.Playlist]:
        owners = await self.neighbours.users(p.owner_id for p in playlists)
        return [self.objects.simplified(p, owners[p.owner_id]) for p in playlists]

    async def _editable(self, playlist_id: uuid.UUID) -> None:
        """NOT_FOUND / PERMISSION_DENIED before any expensive validation (re-checked under the lock)."""
        found = await self.store.playlist(playlist_id)
        require_edit(*(found or (None, [])), current_caller())

    async def _require_tracks(self, track_ids: Sequence[uuid.UUID]) -> None:
        """INVALID_ARGUMENT naming every track the catalog does not know."""
        found = await self.neighbours.tracks(track_ids)
        unknown = [ids.uri("track", t) for t in track_ids if ids.encode(t) not in found]
        if unknown:
            raise InvalidArgument(f"uris: no such tracks in the catalog: {', '.join(unknown)}")

    async def _require_library_items(self, items: Sequence[tuple[str, uuid.UUID]]) -> None:
        """INVALID_ARGUMENT naming every URI that does not resolve (invisible playlists included)."""

        def of(kind: str) -> list[uuid.UUID]:
            return [i for k, i in items if k == kind]

        tracks, albums, artists = await asyncio.gather(
            self.neighbours.tracks(of("track")),
            self.neighbours.albums(of("album")),
            self.neighbours.artists(of("artist")),
        )
        known = (
            {("track", k) for k in tracks} | {("album", k) for k in albums} | {("artist", k) for k in artists}
        )
        caller = current_caller()
        for playlist_id in of("playlist"):
            found = await self.store.playlist(playlist_id)
            if found is not None and domain.can_view(found[0], found[1], caller):
                known.add(("playlist", ids.encode(playlist_id)))
        unknown = [ids.uri(k, i) for k, i in items if (k, ids.encode(i)) not in known]
        if unknown:
            raise InvalidArgument(f"uris: not found: {', '.join(unknown)}")

    def _audited(self, actor: uuid.UUID, action: str, playlist_id: uuid.UUID, user_id: uuid.UUID) -> _Audit:
        return _Audit(self.neighbours, actor, action, playlist_id, user_id)


class _Audit:
    """Records a collaborator change in the audit log once it committed, or a refused attempt.

    Only refusals (403) of an authenticated caller are worth recording as failures; malformed input
    and invisible playlists are not permission changes.
    """

    def __init__(
        self,
        neighbours: Neighbours,
        actor: uuid.UUID,
        action: str,
        playlist_id: uuid.UUID,
        user_id: uuid.UUID,
    ) -> None:
        self.neighbours = neighbours
        self.actor = actor
        self.action = action
        self.playlist_id = playlist_id
        self.user_id = user_id

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None and not isinstance(exc, PermissionDenied):
            return
        await self.neighbours.audit(
            actor=self.actor,
            action=self.action,
            resource_type="playlist",
            resource_id=self.playlist_id,
            details={"collaborator_id": ids.encode(self.user_id)},
            success=exc is None,
        )


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
