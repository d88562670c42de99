"""Playlist rules without I/O: visibility and edit rights, sharing flags, snapshots, URIs, paging."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from library_svc import rules
from library_svc.rules import Sharing
from library_svc.store import PlaylistRow
from meshkit import ids, paging
from meshkit.context import ANONYMOUS, Caller
from meshkit.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from meshkit.ttlcache import TTLCache

OWNER, COLLAB, STRANGER = (Caller(user_id=uuid.uuid4()) for _ in range(3))


def playlist(*, public: bool, collaborative: bool) -> PlaylistRow:
    assert OWNER.user_id is not None
    return PlaylistRow(
        id=uuid.uuid4(),
        owner_id=OWNER.user_id,
        name="p",
        description=None,
        is_public=public,
        is_collaborative=collaborative,
        follower_count=0,
        item_count=0,
        snapshot_version=7,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_private_playlists_do_not_exist_for_strangers() -> None:
    private = playlist(public=False, collaborative=False)
    assert COLLAB.user_id is not None
    with pytest.raises(NotFound):
        rules.require_view(private, [], STRANGER)
    with pytest.raises(NotFound):
        rules.require_view(private, [], ANONYMOUS)
    with pytest.raises(NotFound):  # 404 for editing too: a 403 would confirm it exists
        rules.require_edit(private, [], STRANGER)
    assert rules.require_view(private, [COLLAB.user_id], COLLAB) is private
    assert rules.require_view(private, [], OWNER) is private


def test_public_playlists_are_readable_but_only_editable_by_the_owner() -> None:
    public = playlist(public=True, collaborative=False)
    assert COLLAB.user_id is not None
    assert rules.require_view(public, [], ANONYMOUS) is public
    assert rules.require_edit(public, [], OWNER) is public
    with pytest.raises(PermissionDenied):
        rules.require_edit(public, [], STRANGER)
    with pytest.raises(PermissionDenied):  # a collaborator row means nothing until it is collaborative
        rules.require_edit(public, [COLLAB.user_id], COLLAB)
    with pytest.raises(Unauthenticated):
        rules.require_edit(public, [], ANONYMOUS)


def test_collaborators_edit_collaborative_playlists_but_only_the_owner_manages_them() -> None:
    shared = playlist(public=False, collaborative=True)
    assert COLLAB.user_id is not None
    assert rules.require_edit(shared, [COLLAB.user_id], COLLAB) is shared
    with pytest.raises(PermissionDenied):
        rules.require_owner(shared, [COLLAB.user_id], COLLAB)
    with pytest.raises(NotFound):
        rules.require_edit(shared, [COLLAB.user_id], STRANGER)


def test_collaborative_playlists_are_never_public() -> None:
    assert rules.resolve_sharing(None, None, False) == Sharing(public=True, collaborative=False)
    assert rules.resolve_sharing(None, None, True) == Sharing(public=False, collaborative=True)
    with pytest.raises(InvalidArgument, match="cannot be public"):
        rules.resolve_sharing(None, True, True)
    shared = Sharing(public=False, collaborative=True)
    with pytest.raises(InvalidArgument):  # making a collaborative playlist public needs collaborative=false
        rules.resolve_sharing(shared, True, None)
    assert rules.resolve_sharing(shared, True, False) == Sharing(public=True, collaborative=False)
    assert rules.resolve_sharing(Sharing(True, False), None, True) == Sharing(False, True)


def test_a_stale_snapshot_is_refused_and_an_empty_one_is_last_writer_wins() -> None:
    p = playlist(public=True, collaborative=False)
    current = rules.snapshot_id(p)
    rules.check_snapshot(p, current)
    rules.check_snapshot(p, "")
    p = dataclasses.replace(p, snapshot_version=p.snapshot_version + 1)
    with pytest.raises(Aborted, match="stale"):
        rules.check_snapshot(p, current)


def test_track_uris_are_parsed_in_order_without_duplicates_and_every_bad_one_is_named() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    given = [ids.uri("track", a), f"{ids.uri('track', b)},{ids.uri('track', a)}"]
    assert rules.parse_track_uris(given) == [a, b]
    with pytest.raises(InvalidArgument) as err:
        rules.parse_track_uris(["spotify:track:nope", ids.uri("album", a), ids.uri("track", b)])
    assert "spotify:track:nope" in err.value.message
    assert ids.uri("album", a) in err.value.message
    with pytest.raises(InvalidArgument, match="at most 100"):
        rules.parse_track_uris([ids.uri("track", uuid.uuid4()) for _ in range(101)])


def test_library_uris_take_four_types_and_at_most_forty() -> None:
    a = uuid.uuid4()
    text = ",".join(ids.uri(kind, a) for kind in ("track", "album", "artist", "playlist"))
    assert [k for k, _ in rules.parse_library_uris(text)] == ["track", "album", "artist", "playlist"]
    with pytest.raises(InvalidArgument, match="spotify:user"):
        rules.parse_library_uris(ids.uri("user", a))
    with pytest.raises(InvalidArgument, match="at most 40"):
        rules.parse_library_uris(",".join(ids.uri("track", uuid.uuid4()) for _ in range(41)))
    with pytest.raises(InvalidArgument, match="at least one"):
        rules.parse_library_uris(" , ")


def test_limits_on_size_position_name_and_description() -> None:
    rules.check_room(9_990, 10)
    with pytest.raises(FailedPrecondition, match="10000"):
        rules.check_room(9_990, 11)
    assert rules.check_insert_position(None, 4) == 4
    assert rules.check_insert_position(0, 4) == 0
    with pytest.raises(InvalidArgument):
        rules.check_insert_position(5, 4)
    assert rules.clean_name("  Road trip ") == "Road trip"
    assert rules.clean_name("é" * 100) == "é" * 100
    with pytest.raises(InvalidArgument):
        rules.clean_name("x" * 101)
    with pytest.raises(InvalidArgument):
        rules.clean_name("   ")
    assert rules.clean_description("") is None
    with pytest.raises(InvalidArgument):
        rules.clean_description("x" * 301)


def test_paging_windows_tokens_and_links() -> None:
    page = paging.window(limit=0, offset=0, page_size=0, page_token="", default=20, maximum=100)
    assert page == paging.Window(offset=0, limit=20)
    token = paging.encode_token(40)
    assert (
        paging.window(limit=10, offset=5, page_size=0, page_token=token, default=20, maximum=100).offset == 40
    )
    with pytest.raises(InvalidArgument):
        paging.window(limit=101, offset=0, page_size=0, page_token="", default=20, maximum=100)
    with pytest.raises(InvalidArgument):
        paging.window(limit=0, offset=0, page_size=0, page_token="garbage!", default=20, maximum=100)
    with pytest.raises(InvalidArgument):
        paging.window(limit=0, offset=-1, page_size=0, page_token="", default=20, maximum=100)
    middle = paging.links("http://h/v1/x", paging.Window(offset=10, limit=10), 25)
    assert middle.next == "http://h/v1/x?offset=20&limit=10"
    assert middle.previous == "http://h/v1/x?offset=0&limit=10"
    assert paging.decode_token(middle.next_page_token) == 20
    last = paging.links("http://h/v1/x", paging.Window(offset=20, limit=10), 25)
    assert (last.next, last.next_page_token) == ("", "")


def test_the_track_cache_expires_and_evicts_the_least_recently_used() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(max_entries=2, ttl_s=60, clock=lambda: now[0])
    cache.put_many([("a", 1), ("b", 2)])
    assert cache.get_many(["a", "x"]) == {"a": 1}  # "a" is now the most recently used
    cache.put_many([("c", 3)])
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    now[0] = 60.0
    assert cache.get_many(["a", "c"]) == {}
    assert len(cache) == 0
    off: TTLCache[str, int] = TTLCache(max_entries=10, ttl_s=0)
    off.put_many([("a", 1)])
    assert off.get_many(["a"]) == {}
