"""Playlists over gRPC against the in-process library_svc, real PostgreSQL and Redis, and the mesh's
catalog_svc and auth_svc for hydration, existence checks and audit events.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.library.v1 import library_pb2

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids

if TYPE_CHECKING:
    from tests.library_svc.conftest import LibraryHarness, User


async def expect_status(code: grpc.StatusCode, call: object) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    return err.value


async def test_whole_round_trip(lib: LibraryHarness) -> None:
    owner, follower = lib.users(2)
    stub = lib.stub
    created = await stub.CreatePlaylist(
        library_pb2.CreatePlaylistRequest(name="Road trip", description="for the A7", public=True),
        metadata=owner.metadata,
    )
    assert created.owner.id == owner.key
    assert created.owner.display_name.startswith("Library Tester")  # hydrated from auth_svc
    assert (created.public, created.collaborative, created.items.total) == (True, False, 0)
    assert created.uri == f"spotify:playlist:{created.id}"

    first = await lib.add(owner, created.id, lib.tracks[:3])
    assert first.snapshot_id != created.snapshot_id
    # ?uris=a,b arrives as one comma-separated value; position inserts in front
    second = await stub.AddPlaylistItems(
        library_pb2.AddPlaylistItemsRequest(
            id=created.id,
            uris=[f"{ids.uri('track', lib.tracks[3])},{ids.uri('track', lib.tracks[4])}"],
            position=1,
        ),
        metadata=owner.metadata,
    )
    expected = [lib.tracks[i] for i in (0, 3, 4, 1, 2)]
    assert await lib.item_ids(created.id, owner) == [ids.encode(t) for t in expected]

    page = await stub.ListPlaylistItems(
        library_pb2.ListPlaylistItemsRequest(id=created.id, limit=2, offset=1), metadata=owner.metadata
    )
    assert [i.item.id for i in page.items] == [ids.encode(t) for t in expected[1:3]]
    assert page.items[0].item.name.startswith("Fixture")  # the full track object from catalog_svc
    assert page.items[0].item.album.name == "Fixture Tracks"
    assert page.items[0].added_by.id == owner.key
    assert page.items[0].added_at.endswith("Z")
    assert page.total == 5
    assert page.next.endswith(f"/v1/playlists/{created.id}/items?offset=3&limit=2")
    assert page.previous.endswith("offset=0&limit=2")

    moved = await stub.UpdatePlaylistItems(
        library_pb2.UpdatePlaylistItemsRequest(
            id=created.id, range_start=3, range_length=2, insert_before=0, snapshot_id=second.snapshot_id
        ),
        metadata=owner.metadata,
    )
    expected = [expected[i] for i in (3, 4, 0, 1, 2)]
    assert await lib.item_ids(created.id, owner) == [ids.encode(t) for t in expected]

    removed = await stub.RemovePlaylistItems(
        library_pb2.RemovePlaylistItemsRequest(
            id=created.id,
            items=[library_pb2.PlaylistItemRef(uri=ids.uri("track", expected[0]))],
            tracks=[library_pb2.PlaylistItemRef(uri=ids.uri("track", expected[3]))],  # the older key
            snapshot_id=moved.snapshot_id,
        ),
        metadata=owner.metadata,
    )
    expected = [expected[i] for i in (1, 2, 4)]
    assert [r[:2] for r in lib.rows(created.id)] == [(i, ids.encode(t)) for i, t in enumerate(expected)]

    updated = await stub.UpdatePlaylist(
        library_pb2.UpdatePlaylistRequest(id=created.id, name="Road trip 2", description=""),
        metadata=owner.metadata,
    )
    assert (updated.name, updated.description) == ("Road trip 2", "")
    assert updated.snapshot_id not in (removed.snapshot_id, created.snapshot_id)
    assert [i.item.id for i in updated.items.items] == [ids.encode(t) for t in expected]

    await stub.FollowPlaylist(library_pb2.FollowPlaylistRequest(id=created.id), metadata=follower.metadata)
    got = await stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=created.id), metadata=follower.metadata)
    assert got.followers.total == 1
    assert got.items.total == 3

    mine = await stub.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(), metadata=follower.metadata)
    assert [p.id for p in mine.items] == [created.id]
    assert mine.items[0].items.total == 3  # simplified: only href and total
    assert not mine.items[0].items.items
    theirs = await stub.ListUserPlaylists(
        library_pb2.ListUserPlaylistsRequest(user_id=owner.key), metadata=follower.metadata
    )
    assert [p.id for p in theirs.items] == [created.id]

    await stub.UnfollowPlaylist(
        library_pb2.UnfollowPlaylistRequest(id=created.id), metadata=follower.metadata
    )
    assert lib.playlist_row(created.id)["follower_count"] == 0
    mine = await stub.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(), metadata=follower.metadata)
    assert mine.total == 0


async def test_lists_page_and_hide_private_playlists_from_others(lib: LibraryHarness) -> None:
    owner, other = lib.users(2)
    made = [await lib.create(owner, name=f"P{i}", public=i % 2 == 0) for i in range(5)]
    mine = await lib.stub.ListMyPlaylists(
        library_pb2.ListMyPlaylistsRequest(limit=2, offset=1), metadata=owner.metadata
    )
    assert mine.total == 5
    assert [p.name for p in mine.items] == ["P3", "P2"]  # newest first
    assert mine.next_page_token
    rest = await lib.stub.ListMyPlaylists(
        library_pb2.ListMyPlaylistsRequest(page_size=10, page_token=mine.next_page_token),
        metadata=owner.metadata,
    )
    assert [p.name for p in rest.items] == ["P1", "P0"]
    public = await lib.stub.ListUserPlaylists(
        library_pb2.ListUserPlaylistsRequest(user_id=f"spotify:user:{owner.key}"), metadata=other.metadata
    )
    assert [p.name for p in public.items] == ["P4", "P2", "P0"]
    own_view = await lib.stub.ListUserPlaylists(
        library_pb2.ListUserPlaylistsRequest(user_id=owner.key), metadata=owner.metadata
    )
    assert own_view.total == len(made)
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(limit=51), metadata=owner.metadata),
    )


async def test_another_users_private_playlist_is_404_and_a_public_one_is_403_to_edit(
    lib: LibraryHarness,
) -> None:
    owner, stranger = lib.users(2)
    private = await lib.create(owner, public=False)
    public = await lib.create(owner, public=True)
    await lib.add(owner, private.id, lib.tracks[:2])
    await lib.add(owner, public.id, lib.tracks[:2])
    before = {p.id: lib.playlist_row(p.id) for p in (private, public)}
    stub, meta = lib.stub, stranger.metadata

    for call in (
        stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=private.id), metadata=meta),
        stub.ListPlaylistItems(library_pb2.ListPlaylistItemsRequest(id=private.id), metadata=meta),
        stub.FollowPlaylist(library_pb2.FollowPlaylistRequest(id=private.id), metadata=meta),
        lib.add(stranger, private.id, lib.tracks[5:6]),
        stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=private.id)),  # anonymous
    ):
        err = await expect_status(grpc.StatusCode.NOT_FOUND, call)
        assert "playlist not found" in err.details()

    assert (
        await stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=public.id), metadata=meta)
    ).items.total == 2
    for call in (
        lib.add(stranger, public.id, lib.tracks[5:6]),
        stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(id=public.id, range_start=0, insert_before=2),
            metadata=meta,
        ),
        stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(id=public.id, uris=[ids.uri("track", lib.tracks[9])]),
            metadata=meta,
        ),
        stub.RemovePlaylistItems(
            library_pb2.RemovePlaylistItemsRequest(
                id=public.id, items=[library_pb2.PlaylistItemRef(uri=ids.uri("track", lib.tracks[0]))]
            ),
            metadata=meta,
        ),
        stub.UpdatePlaylist(library_pb2.UpdatePlaylistRequest(id=public.id, name="mine now"), metadata=meta),
        stub.AddPlaylistCollaborator(
            library_pb2.AddPlaylistCollaboratorRequest(playlist_id=public.id, user_id=stranger.key),
            metadata=meta,
        ),
    ):
        await expect_status(grpc.StatusCode.PERMISSION_DENIED, call)
    await expect_status(
        grpc.StatusCode.UNAUTHENTICATED,
        lib.stub.AddPlaylistItems(
            library_pb2.AddPlaylistItemsRequest(id=public.id, uris=[ids.uri("track", lib.tracks[5])])
        ),
    )
    assert {p.id: lib.playlist_row(p.id) for p in (private, public)} == before


async def test_collaborators_edit_and_only_the_owner_manages_them(
    lib: LibraryHarness, running_mesh: Mesh
) -> None:
    owner, collaborator, stranger = lib.users(3)
    stub = lib.stub
    with pytest.raises(aio.AioRpcError) as err:
        await lib.create(owner, public=True, collaborative=True)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    shared = await lib.create(owner, collaborative=True)
    assert (shared.public, shared.collaborative) == (False, True)  # Spotify: collaborative is non-public

    await expect_status(grpc.StatusCode.NOT_FOUND, lib.add(collaborator, shared.id, lib.tracks[:1]))
    added = await stub.AddPlaylistCollaborator(
        library_pb2.AddPlaylistCollaboratorRequest(playlist_id=shared.id, user_id=collaborator.key),
        metadata=owner.metadata,
    )
    assert list(added.collaborator_ids) == [collaborator.key]
    await assert_audited(running_mesh, "playlist.add_collaborator", shared.id)

    await lib.add(collaborator, shared.id, lib.tracks[:2])
    assert [r[2] for r in lib.rows(shared.id)] == [collaborator.key] * 2
    seen = await stub.GetPlaylist(
        library_pb2.GetPlaylistRequest(id=shared.id), metadata=collaborator.metadata
    )
    assert list(seen.collaborator_ids) == [collaborator.key]

    # collaborators edit items, but neither manage collaborators nor change sharing
    await expect_status(
        grpc.StatusCode.PERMISSION_DENIED,
        stub.AddPlaylistCollaborator(
            library_pb2.AddPlaylistCollaboratorRequest(playlist_id=shared.id, user_id=stranger.key),
            metadata=collaborator.metadata,
        ),
    )
    await expect_status(
        grpc.StatusCode.PERMISSION_DENIED,
        stub.UpdatePlaylist(
            library_pb2.UpdatePlaylistRequest(id=shared.id, collaborative=False),
            metadata=collaborator.metadata,
        ),
    )
    await expect_status(
        grpc.StatusCode.NOT_FOUND,
        stub.AddPlaylistCollaborator(
            library_pb2.AddPlaylistCollaboratorRequest(
                playlist_id=shared.id, user_id=ids.encode(uuid.uuid4())
            ),
            metadata=owner.metadata,
        ),
    )

    removed = await stub.RemovePlaylistCollaborator(
        library_pb2.RemovePlaylistCollaboratorRequest(playlist_id=shared.id, user_id=collaborator.key),
        metadata=owner.metadata,
    )
    assert list(removed.collaborator_ids) == []
    await expect_status(grpc.StatusCode.NOT_FOUND, lib.add(collaborator, shared.id, lib.tracks[2:3]))
    assert lib.playlist_row(shared.id)["item_count"] == 2


async def assert_audited(mesh: Mesh, action: str, playlist_id: str) -> None:
    """auth_svc's audit log holds exactly one successful `action` on the playlist."""
    admin = ids.encode(demo.demo_uuid("user:admin@example.com"))
    async with aio.insecure_channel(f"127.0.0.1:{mesh.layout.internal_ports['auth_svc']}") as channel:
        logs = await auth_pb2_grpc.AdminServiceStub(channel).ListAuditLogs(
            auth_pb2.ListAuditLogsRequest(action=action, resource_type="playlist", limit=200),
            metadata=(("x-user-id", admin), ("x-user-roles", "user,admin")),
        )
    assert [e.success for e in logs.events if e.resource_id == playlist_id] == [True]


async def test_a_stale_snapshot_is_409_and_changes_nothing(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    old = await lib.add(owner, playlist.id, lib.tracks[:4])
    current = await lib.add(owner, playlist.id, lib.tracks[4:5])
    before = (lib.rows(playlist.id), lib.playlist_row(playlist.id))
    for call in (
        lib.stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(
                id=playlist.id, range_start=0, insert_before=3, snapshot_id=old.snapshot_id
            ),
            metadata=owner.metadata,
        ),
        lib.stub.RemovePlaylistItems(
            library_pb2.RemovePlaylistItemsRequest(
                id=playlist.id,
                items=[library_pb2.PlaylistItemRef(uri=ids.uri("track", lib.tracks[0]))],
                snapshot_id=old.snapshot_id,
            ),
            metadata=owner.metadata,
        ),
    ):
        err = await expect_status(grpc.StatusCode.ABORTED, call)  # Envoy: 409 Conflict
        assert current.snapshot_id in err.details()
    assert (lib.rows(playlist.id), lib.playlist_row(playlist.id)) == before

    # without a snapshot the reorder is last-writer-wins, and deletes are idempotent
    for _ in range(2):
        await lib.stub.RemovePlaylistItems(
            library_pb2.RemovePlaylistItemsRequest(
                id=playlist.id, items=[library_pb2.PlaylistItemRef(uri=ids.uri("track", lib.tracks[0]))]
            ),
            metadata=owner.metadata,
        )
    assert [r[0] for r in lib.rows(playlist.id)] == [0, 1, 2, 3]


async def test_the_same_idempotency_key_adds_once(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    key = str(uuid.uuid4())
    first = await lib.add(owner, playlist.id, lib.tracks[:3], request_id=key)
    await lib.add(owner, playlist.id, lib.tracks[3:4])  # another write in between
    again = await lib.add(owner, playlist.id, lib.tracks[:3], request_id=key)
    assert again.snapshot_id == first.snapshot_id  # the first answer, replayed
    assert lib.playlist_row(playlist.id)["item_count"] == 4

    # the Idempotency-Key header (what Envoy forwards from JSON clients) works the same way
    header = (*owner.metadata, ("idempotency-key", str(uuid.uuid4())))
    request = library_pb2.AddPlaylistItemsRequest(
        id=playlist.id, uris=[ids.uri("track", lib.tracks[4])], position=0
    )
    replies = await asyncio.gather(
        *(lib.stub.AddPlaylistItems(request, metadata=header, timeout=30) for _ in range(5))
    )
    assert len({r.snapshot_id for r in replies}) == 1  # concurrent duplicates: one write, one answer
    row = lib.playlist_row(playlist.id)
    assert (row["item_count"], row["version"]) == (5, 4)  # created at 1, then exactly three writes

    other = library_pb2.AddPlaylistItemsRequest(id=playlist.id, uris=[ids.uri("track", lib.tracks[5])])
    err = await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT, lib.stub.AddPlaylistItems(other, metadata=header)
    )
    assert "different request" in err.details()

    # keys are per user: someone else's identical key is their own
    (stranger,) = lib.users(1)
    mine = await lib.create(stranger)
    await lib.add(stranger, mine.id, lib.tracks[:1], request_id=key)
    assert lib.playlist_row(mine.id)["item_count"] == 1

    # a create retried with its request_id returns the first playlist instead of a second one
    create = library_pb2.CreatePlaylistRequest(name="Once", request_id=str(uuid.uuid4()))
    made = [await lib.stub.CreatePlaylist(create, metadata=stranger.metadata) for _ in range(2)]
    assert made[0].id == made[1].id
    listed = await lib.stub.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(), metadata=stranger.metadata)
    assert [p.name for p in listed.items].count("Once") == 1


async def test_a_retried_update_gets_the_first_answer(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner, public=True)
    header = (*owner.metadata, ("idempotency-key", str(uuid.uuid4())))
    rename = library_pb2.UpdatePlaylistRequest(id=playlist.id, name="Renamed once")
    first = await lib.stub.UpdatePlaylist(rename, metadata=header)
    await lib.add(owner, playlist.id, lib.tracks[:1])  # another write in between
    again = await lib.stub.UpdatePlaylist(rename, metadata=header)
    assert again == first  # replayed as it was, not the playlist with its new item
    assert lib.playlist_row(playlist.id)["version"] == 3  # created, renamed once, one add


async def test_a_failed_write_does_not_burn_its_idempotency_key(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    key = str(uuid.uuid4())
    await lib.add(owner, playlist.id, lib.tracks[:1])
    too_far = library_pb2.AddPlaylistItemsRequest(
        id=playlist.id, uris=[ids.uri("track", lib.tracks[1])], position=7, request_id=key
    )
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT, lib.stub.AddPlaylistItems(too_far, metadata=owner.metadata)
    )
    fixed = library_pb2.AddPlaylistItemsRequest(
        id=playlist.id, uris=[ids.uri("track", lib.tracks[1])], position=1, request_id=key
    )
    # same key, corrected request: the key was released, so this is accepted as new
    await lib.stub.AddPlaylistItems(fixed, metadata=owner.metadata)
    assert lib.playlist_row(playlist.id)["item_count"] == 2


async def test_twenty_concurrent_collaborators_adding_fifty_tracks_each_end_dense(
    lib: LibraryHarness,
) -> None:
    owner, *collaborators = lib.users(21)
    shared = await lib.create(owner, collaborative=True)
    for c in collaborators:
        await lib.stub.AddPlaylistCollaborator(
            library_pb2.AddPlaylistCollaboratorRequest(playlist_id=shared.id, user_id=c.key),
            metadata=owner.metadata,
        )
    shares = {c.key: lib.tracks[i * 50 : (i + 1) * 50] for i, c in enumerate(collaborators)}

    async def contribute(user: User) -> None:
        mine = shares[user.key]
        for start in range(0, 50, 5):  # ten requests of five tracks each, interleaved with everyone else's
            await lib.add(user, shared.id, mine[start : start + 5])

    await asyncio.gather(*(contribute(c) for c in collaborators))

    rows = lib.rows(shared.id)
    assert [r[0] for r in rows] == list(range(1_000))
    assert {r[1] for r in rows} == {ids.encode(t) for t in lib.tracks}
    for user in collaborators:  # each collaborator's tracks kept their own order, and their name
        theirs = [r for r in rows if r[2] == user.key]
        assert [r[1] for r in theirs] == [ids.encode(t) for t in shares[user.key]]
    row = lib.playlist_row(shared.id)
    assert (row["item_count"], row["version"]) == (1_000, 1 + 200)
    assert len(await lib.item_ids(shared.id, owner)) == 1_000


async def test_unknown_or_malformed_uris_are_400_and_change_nothing(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    await lib.add(owner, playlist.id, lib.tracks[:2])
    before = (lib.rows(playlist.id), lib.playlist_row(playlist.id))
    unknown = ids.uri("track", uuid.uuid4())

    err = await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.AddPlaylistItems(
            library_pb2.AddPlaylistItemsRequest(
                id=playlist.id, uris=[ids.uri("track", lib.tracks[5]), unknown]
            ),
            metadata=owner.metadata,
        ),
    )
    assert unknown in err.details()
    assert ids.uri("track", lib.tracks[5]) not in err.details()
    for bad in ("spotify:track:short", "spotify:album:" + ids.encode(lib.tracks[0]), "https://x/track/1"):
        err = await expect_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            lib.stub.AddPlaylistItems(
                library_pb2.AddPlaylistItemsRequest(id=playlist.id, uris=[bad]), metadata=owner.metadata
            ),
        )
        assert bad in err.details()
    err = await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(id=playlist.id, uris=[unknown]), metadata=owner.metadata
        ),
    )
    assert unknown in err.details()
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.RemovePlaylistItems(
            library_pb2.RemovePlaylistItemsRequest(
                id=playlist.id, items=[library_pb2.PlaylistItemRef(uri="spotify:track:nope")]
            ),
            metadata=owner.metadata,
        ),
    )
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.GetPlaylist(library_pb2.GetPlaylistRequest(id="not-an-id"), metadata=owner.metadata),
    )
    assert (lib.rows(playlist.id), lib.playlist_row(playlist.id)) == before


async def test_re_adding_a_track_is_a_no_op_that_succeeds(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    first = await lib.add(owner, playlist.id, lib.tracks[:3])
    again = await lib.add(owner, playlist.id, [lib.tracks[1], lib.tracks[1], lib.tracks[0]])
    assert again.snapshot_id == first.snapshot_id  # nothing changed, so no new version
    mixed = await lib.add(owner, playlist.id, [lib.tracks[2], lib.tracks[3]], position=0)
    assert mixed.snapshot_id != first.snapshot_id
    assert [r[1] for r in lib.rows(playlist.id)] == [ids.encode(lib.tracks[i]) for i in (3, 0, 1, 2)]


async def test_replace_reorder_and_remove_keep_positions_dense(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    tracks = lib.tracks[100:110]
    await lib.add(owner, playlist.id, tracks)
    order = list(tracks)

    async def check() -> None:
        assert [r[:2] for r in lib.rows(playlist.id)] == [(i, ids.encode(t)) for i, t in enumerate(order)]

    for start, before, length in ((7, 1, 3), (0, 10, 2), (4, 5, 1), (2, 0, 1)):
        await lib.stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(
                id=playlist.id, range_start=start, insert_before=before, range_length=length
            ),
            metadata=owner.metadata,
        )
        moving = order[start : start + length]
        anchor = order[before] if before < len(order) else None
        order = [t for t in order if t not in moving]
        at = len(order) if anchor is None or anchor in moving else order.index(anchor)
        order[at:at] = moving
        await check()

    await lib.stub.RemovePlaylistItems(
        library_pb2.RemovePlaylistItemsRequest(
            id=playlist.id, items=[library_pb2.PlaylistItemRef(uri=ids.uri("track", t)) for t in order[1:8:3]]
        ),
        metadata=owner.metadata,
    )
    order = [t for i, t in enumerate(order) if i not in (1, 4, 7)]
    await check()

    order = [lib.tracks[200], tracks[0], lib.tracks[201]]
    await lib.stub.UpdatePlaylistItems(
        library_pb2.UpdatePlaylistItemsRequest(id=playlist.id, uris=[ids.uri("track", t) for t in order]),
        metadata=owner.metadata,
    )
    await check()
    assert lib.playlist_row(playlist.id)["item_count"] == 3

    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(id=playlist.id, range_start=3, insert_before=0),
            metadata=owner.metadata,
        ),
    )


async def test_a_playlist_holds_at_most_ten_thousand_items(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner)
    with lib.engine.begin() as conn:  # 9,999 rows written directly: only the count matters here
        conn.exec_driver_sql(
            "INSERT INTO library.playlist_items (playlist_id, track_id, position) "
            "SELECT %(p)s, gen_random_uuid(), n FROM generate_series(0, 9998) AS n",
            {"p": ids.decode(playlist.id)},
        )
        conn.exec_driver_sql(
            "UPDATE library.playlists SET item_count = 9999 WHERE id = %(p)s", {"p": ids.decode(playlist.id)}
        )
    err = await expect_status(
        grpc.StatusCode.FAILED_PRECONDITION, lib.add(owner, playlist.id, lib.tracks[:2])
    )
    assert "10000" in err.details()
    await lib.add(owner, playlist.id, lib.tracks[:1])
    assert lib.playlist_row(playlist.id)["item_count"] == 10_000
    last = await lib.stub.ListPlaylistItems(
        library_pb2.ListPlaylistItemsRequest(id=playlist.id, offset=9_990, limit=50), metadata=owner.metadata
    )
    assert len(last.items) == 10
    assert last.items[-1].item.id == ids.encode(lib.tracks[0])
    assert not last.items[0].HasField("item")  # a track the catalog does not know keeps its place
    assert (last.next, last.next_page_token) == ("", "")


async def test_names_descriptions_and_owners_are_checked(lib: LibraryHarness, running_mesh: Mesh) -> None:
    owner, other = lib.users(2)
    for request in (
        library_pb2.CreatePlaylistRequest(name=""),
        library_pb2.CreatePlaylistRequest(name="x" * 101),
        library_pb2.CreatePlaylistRequest(name="ok", description="d" * 301),
    ):
        await expect_status(
            grpc.StatusCode.INVALID_ARGUMENT, lib.stub.CreatePlaylist(request, metadata=owner.metadata)
        )
    await expect_status(
        grpc.StatusCode.PERMISSION_DENIED,
        lib.stub.CreatePlaylist(
            library_pb2.CreatePlaylistRequest(user_id=other.key, name="for you"), metadata=owner.metadata
        ),
    )
    await expect_status(
        grpc.StatusCode.UNAUTHENTICATED,
        lib.stub.CreatePlaylist(library_pb2.CreatePlaylistRequest(name="who am I")),
    )
    made = await lib.stub.CreatePlaylist(
        library_pb2.CreatePlaylistRequest(user_id=owner.key, name="n" * 100, description="d" * 300),
        metadata=owner.metadata,
    )
    assert len(made.name) == 100
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        lib.stub.UpdatePlaylist(
            library_pb2.UpdatePlaylistRequest(id=made.id, name="y" * 101), metadata=owner.metadata
        ),
    )
    shared = await lib.stub.UpdatePlaylist(
        library_pb2.UpdatePlaylistRequest(id=made.id, collaborative=True), metadata=owner.metadata
    )
    assert (shared.public, shared.collaborative) == (False, True)
    await assert_audited(running_mesh, "playlist.update_sharing", made.id)
    await expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,  # an empty replace would wipe the playlist: refused
        lib.stub.UpdatePlaylistItems(
            library_pb2.UpdatePlaylistItemsRequest(id=made.id), metadata=owner.metadata
        ),
    )


async def test_follower_count_stays_right_under_concurrency(lib: LibraryHarness) -> None:
    (owner,) = lib.users(1)
    playlist = await lib.create(owner, public=True)
    fans = lib.users(30, with_profile=False)  # following needs no auth profile

    def follow(user: User) -> object:
        return lib.stub.FollowPlaylist(
            library_pb2.FollowPlaylistRequest(id=playlist.id), metadata=user.metadata
        )

    def unfollow(user: User) -> object:
        return lib.stub.UnfollowPlaylist(
            library_pb2.UnfollowPlaylistRequest(id=playlist.id), metadata=user.metadata
        )

    await asyncio.gather(*(follow(f) for f in fans for _ in range(3)))  # every fan three times at once
    row = lib.playlist_row(playlist.id)
    assert (row["follower_count"], row["followers"]) == (30, 30)
    await asyncio.gather(*(unfollow(f) for f in fans[:20] for _ in range(2)), *(follow(f) for f in fans[20:]))
    row = lib.playlist_row(playlist.id)
    assert (row["follower_count"], row["followers"]) == (10, 10)


async def test_the_demo_playlist_is_served_with_its_tracks(lib: LibraryHarness) -> None:
    got = await lib.stub.GetPlaylist(
        library_pb2.GetPlaylistRequest(id=f"spotify:playlist:{demo.DEMO_PLAYLIST_ID}")
    )
    assert got.name == "Demo Mix"
    assert got.owner.display_name == "Demo Listener"
    assert got.items.items[0].item.id == demo.DEMO_TRACK_ID
