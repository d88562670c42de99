"""Saved items (/v1/me/library, /v1/me/tracks, /v1/me/albums, /v1/me/following) over gRPC against the
in-process library_svc, with track, album and artist objects from the mesh's catalog_svc.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc import aio
from spotify.library.v1 import library_pb2

from meshctl.mesh import Mesh
from meshkit import ids

if TYPE_CHECKING:
    from tests.library_svc.conftest import LibraryHarness, User


async def contains(lib: LibraryHarness, user: User, uris: list[str]) -> list[bool]:
    answer = await lib.stub.CheckLibraryContains(
        library_pb2.CheckLibraryContainsRequest(uris=",".join(uris)), metadata=user.metadata
    )
    return [v.bool_value for v in answer.values]


async def test_saved_tracks_round_trip_newest_first_with_full_objects(lib: LibraryHarness) -> None:
    (user,) = lib.users(1, with_profile=False)
    first, second, never = (ids.uri("track", t) for t in lib.tracks[700:703])
    for uri in (first, second, first):  # saving again keeps the first saved_at and one row
        await lib.stub.SaveLibraryItems(library_pb2.SaveLibraryItemsRequest(uris=uri), metadata=user.metadata)
    assert await contains(lib, user, [second, never, first]) == [True, False, True]

    page = await lib.stub.ListSavedTracks(library_pb2.ListSavedTracksRequest(limit=1), metadata=user.metadata)
    assert page.total == 2
    assert page.items[0].track.uri == second  # newest first
    assert page.items[0].track.album.name == "Fixture Tracks"
    assert page.items[0].added_at.endswith("Z")
    assert page.next.endswith("/v1/me/tracks?offset=1&limit=1")
    rest = await lib.stub.ListSavedTracks(
        library_pb2.ListSavedTracksRequest(page_token=page.next_page_token), metadata=user.metadata
    )
    assert [s.track.uri for s in rest.items] == [first]

    await lib.stub.RemoveLibraryItems(
        library_pb2.RemoveLibraryItemsRequest(uris=f"{first},{never}"), metadata=user.metadata
    )
    assert await contains(lib, user, [first, second]) == [False, True]


async def test_bad_or_unknown_uris_are_400_and_save_nothing(lib: LibraryHarness) -> None:
    (user,) = lib.users(1, with_profile=False)
    good = ids.uri("track", lib.tracks[710])
    unknown_track, unknown_artist = ids.uri("track", uuid.uuid4()), ids.uri("artist", uuid.uuid4())
    for uris, named in (
        (f"{good},{unknown_track},{unknown_artist}", [unknown_track, unknown_artist]),
        (f"{good},spotify:track:bad", ["spotify:track:bad"]),
        (f"{good},{ids.uri('user', uuid.uuid4())}", ["spotify:user:"]),
        (",".join(ids.uri("track", t) for t in lib.tracks[:41]), ["at most 40"]),
    ):
        with pytest.raises(aio.AioRpcError) as err:
            await lib.stub.SaveLibraryItems(
                library_pb2.SaveLibraryItemsRequest(uris=uris), metadata=user.metadata
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert all(n in err.value.details() for n in named), err.value.details()
    assert await contains(lib, user, [good]) == [False]
    with pytest.raises(aio.AioRpcError) as err:
        await lib.stub.CheckLibraryContains(library_pb2.CheckLibraryContainsRequest(uris=good))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_saving_a_playlist_follows_it_and_private_ones_are_not_found(lib: LibraryHarness) -> None:
    owner, fan = lib.users(2)
    public = await lib.create(owner, public=True)
    private = await lib.create(owner, public=False)
    uri = f"spotify:playlist:{public.id}"
    await lib.stub.SaveLibraryItems(library_pb2.SaveLibraryItemsRequest(uris=uri), metadata=fan.metadata)
    assert lib.playlist_row(public.id)["follower_count"] == 1
    assert await contains(lib, fan, [uri, f"spotify:playlist:{private.id}"]) == [True, False]
    mine = await lib.stub.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(), metadata=fan.metadata)
    assert [p.id for p in mine.items] == [public.id]
    with pytest.raises(aio.AioRpcError) as err:
        await lib.stub.SaveLibraryItems(
            library_pb2.SaveLibraryItemsRequest(uris=f"spotify:playlist:{private.id}"), metadata=fan.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await lib.stub.RemoveLibraryItems(library_pb2.RemoveLibraryItemsRequest(uris=uri), metadata=fan.metadata)
    assert lib.playlist_row(public.id)["follower_count"] == 0


async def test_followed_artists_page_by_cursor(lib: LibraryHarness, artist_ids: list[uuid.UUID]) -> None:
    (user,) = lib.users(1, with_profile=False)
    await lib.stub.SaveLibraryItems(
        library_pb2.SaveLibraryItemsRequest(uris=",".join(ids.uri("artist", a) for a in artist_ids)),
        metadata=user.metadata,
    )
    seen: list[str] = []
    after = ""
    while True:
        reply = await lib.stub.ListFollowedArtists(
            library_pb2.ListFollowedArtistsRequest(type="artist", limit=2, after=after),
            metadata=user.metadata,
        )
        page = reply.artists
        assert page.total == len(artist_ids)
        assert all(a.name and a.type == "artist" for a in page.items)  # full objects from catalog_svc
        seen.extend(a.id for a in page.items)
        after = page.cursors.after
        if not after:
            assert page.next == ""
            break
        assert page.next.endswith(f"after={after}")
    assert sorted(seen) == sorted(ids.encode(a) for a in artist_ids)
    assert len(seen) == len(set(seen))
    with pytest.raises(aio.AioRpcError) as err:
        await lib.stub.ListFollowedArtists(
            library_pb2.ListFollowedArtistsRequest(type="user"), metadata=user.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_saved_albums_come_with_full_album_objects(
    lib: LibraryHarness, album_ids: list[uuid.UUID], running_mesh: Mesh
) -> None:
    """Saved albums are listed with the catalog's own album objects (BatchGetAlbums)."""
    (user,) = lib.users(1, with_profile=False)
    uris = ",".join(ids.uri("album", a) for a in album_ids)
    await lib.stub.SaveLibraryItems(library_pb2.SaveLibraryItemsRequest(uris=uris), metadata=user.metadata)
    assert await contains(lib, user, uris.split(",")) == [True] * len(album_ids)
    page = await lib.stub.ListSavedAlbums(
        library_pb2.ListSavedAlbumsRequest(limit=50), metadata=user.metadata
    )
    assert page.total == len(album_ids)
    assert sorted(s.album.id for s in page.items) == sorted(ids.encode(a) for a in album_ids)
    assert all(s.album.name and s.album.type == "album" for s in page.items)
