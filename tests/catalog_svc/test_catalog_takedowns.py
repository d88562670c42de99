"""Takedowns in catalog_svc: who may, what reads stop showing, the events, retries, the audit trail."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc import aio
from kafka import KafkaConsumer
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from sqlalchemy import create_engine, text

from meshkit import ids, topics
from tests import kafka_tail

if TYPE_CHECKING:
    from conftest import People

Stub = catalog_pb2_grpc.CatalogServiceStub
Event = catalog_pb2.CatalogChangeEvent
OK = grpc.StatusCode.OK


async def _status(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except aio.AioRpcError as exc:
        return exc.code()
    return OK


def _word() -> str:
    return f"tkd{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def stored(catalog_database_url: str) -> Iterator[Callable[[], dict[str, object]]]:
    """Takedown rows and the outbox's event count: what a refused call must leave as it was."""
    engine = create_engine(catalog_database_url)

    def snapshot() -> dict[str, object]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT entity_id, reason, by_admin FROM catalog.takedowns ORDER BY 1"))
            events = conn.execute(
                text("SELECT pg_sequence_last_value('catalog.outbox_events_id_seq')")
            ).scalar()
            return {"takedowns": [tuple(r) for r in rows], "events written": events or 0}

    yield snapshot
    engine.dispose()


@pytest.fixture(scope="module")
def audit_rows(catalog_database_url: str) -> Iterator[Callable[[str], list[tuple[str, str, bool]]]]:
    """(action, actor, success) of the audit entries about one resource, oldest first."""
    engine = create_engine(catalog_database_url)

    def rows(resource_id: str) -> list[tuple[str, str, bool]]:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT action, actor_id::text, success FROM auth.audit_logs "
                    "WHERE resource_id = :r ORDER BY occurred_at"
                ),
                {"r": resource_id},
            )
            return [(a, actor, ok) for a, actor, ok in found]

    yield rows
    engine.dispose()


async def _album_with_tracks(
    catalog: Stub, people: People, word: str, artist_id: str, n: int = 2
) -> tuple[str, list[str]]:
    admin = people.admin.metadata
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(name=f"Album {word}", artist_ids=[artist_id]), metadata=admin
    )
    tracks = []
    for number in range(1, n + 1):
        track = await catalog.CreateTrack(
            catalog_pb2.CreateTrackRequest(
                album_id=album.id, name=f"Song {word} {number}", track_number=number
            ),
            metadata=admin,
        )
        tracks.append(track.id)
    return album.id, tracks


def _take_down(
    collection: str, key: str, reason: str = "rights dispute"
) -> catalog_pb2.TakeDownContentRequest:
    return catalog_pb2.TakeDownContentRequest(collection=collection, id=key, reason=reason)


def _restore(collection: str, key: str, reason: str = "resolved") -> catalog_pb2.RestoreContentRequest:
    return catalog_pb2.RestoreContentRequest(collection=collection, id=key, reason=reason)


def _events(consumer: KafkaConsumer, keys: list[str], within: float = 20) -> dict[str, list[Event]]:
    """Each entity's events from its first deletion on, polled until they end with a deletion and
    then a creation; fails at the deadline. (The entities' own creation events may still be on
    their way when the tail starts: the outbox relay publishes after the commit.)"""
    found: dict[str, list[Event]] = {key: [] for key in keys}
    deadline = time.monotonic() + within

    def from_deletion(key: str) -> list[Event]:
        kinds = [e.change_kind for e in found[key]]
        return (
            found[key][kinds.index(Event.CHANGE_KIND_DELETED) :] if Event.CHANGE_KIND_DELETED in kinds else []
        )

    def settled(key: str) -> bool:
        tail = [e.change_kind for e in from_deletion(key)][-2:]
        return tail == [Event.CHANGE_KIND_DELETED, Event.CHANGE_KIND_CREATED]

    while not all(settled(key) for key in keys):
        assert time.monotonic() < deadline, (
            f"events { ({k: [e.change_kind for e in found[k]] for k in keys}) }"
        )
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                event = Event.FromString(record.value)
                if event.id in found:
                    found[event.id].append(event)
    return {key: from_deletion(key) for key in keys}


async def _visible(catalog: Stub, word: str, track_ids: list[str]) -> dict[str, bool]:
    """Where the tracks show: by id, in their album, and in search (which reads them by id)."""
    by_id = await catalog.BatchGetTracks(catalog_pb2.BatchGetTracksRequest(ids=",".join(track_ids)))
    found = await catalog.Search(catalog_pb2.SearchRequest(q=word, type="track", limit=50))
    return {
        "by id": len(by_id.tracks) == len(track_ids),
        "search": {t.id for t in found.tracks.items} >= set(track_ids),
    }


async def test_an_artist_takes_down_their_track_and_restores_it(
    catalog: Stub,
    people: People,
    kafka_bootstrap: str,
    audit_rows: Callable[[str], list[tuple[str, str, bool]]],
) -> None:
    word = _word()
    album_id, (track_id, other_id) = await _album_with_tracks(catalog, people, word, people.artist_a_id)
    owner = people.artist_a.metadata
    consumer = await asyncio.to_thread(kafka_tail.tail, kafka_bootstrap, topics.CATALOG_CHANGES.name)
    try:
        down = await catalog.TakeDownContent(_take_down("tracks", track_id), metadata=owner)
        assert (down.uri, down.reason) == (f"spotify:track:{track_id}", "rights dispute")
        assert down.taken_down_by == ids.encode(people.artist_a.user_id)

        assert (
            await _status(catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id)))
            == grpc.StatusCode.NOT_FOUND
        )
        gone = await catalog.BatchGetTracks(catalog_pb2.BatchGetTracksRequest(ids=f"{track_id},{other_id}"))
        assert [t.id for t in gone.tracks] == [other_id]
        page = await catalog.ListAlbumTracks(catalog_pb2.ListAlbumTracksRequest(id=album_id))
        assert ([t.id for t in page.items], page.total) == ([other_id], 1)
        album = await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album_id))
        assert [t.id for t in album.tracks.items] == [other_id]
        found = await catalog.Search(catalog_pb2.SearchRequest(q=word, type="track", limit=50))
        assert {t.id for t in found.tracks.items} == {other_id}
        with pytest.raises(aio.AioRpcError) as refused:
            await catalog.ListTrackAudioFiles(catalog_pb2.ListTrackAudioFilesRequest(track_id=track_id))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "taken down" in (refused.value.details() or "")

        # Library asks for withdrawn tracks too, to show them in playlists as unplayable.
        shown = await catalog.BatchGetTracks(
            catalog_pb2.BatchGetTracksRequest(ids=f"{track_id},{other_id}", include_unavailable=True)
        )
        assert [(t.id, t.HasField("is_playable") and t.is_playable) for t in shown.tracks] == [
            (track_id, False),
            (other_id, False),
        ]
        assert [t.restrictions.reason for t in shown.tracks] == ["takedown", ""]
        assert not shown.tracks[1].HasField("is_playable")  # a live track: as before (no market)

        restored = await catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)
        assert (restored.uri, restored.was_taken_down) == (f"spotify:track:{track_id}", True)
        assert await _visible(catalog, word, [track_id, other_id]) == {"by id": True, "search": True}
        audio = await catalog.ListTrackAudioFiles(catalog_pb2.ListTrackAudioFilesRequest(track_id=track_id))
        assert list(audio.audio_files) == []  # known again (it has no audio in this test)

        found_events = await asyncio.to_thread(_events, consumer, [track_id])
    finally:
        consumer.close()
    events = found_events[track_id]
    assert [e.change_kind for e in events] == [Event.CHANGE_KIND_DELETED, Event.CHANGE_KIND_CREATED]
    assert events[0].entity_type == Event.ENTITY_TYPE_TRACK
    assert events[0].WhichOneof("snapshot") is None
    assert events[1].track.id == track_id and events[1].track.name == f"Song {word} 1"
    actor = str(people.artist_a.user_id)
    assert audit_rows(track_id) == [("catalog.take_down", actor, True), ("catalog.restore", actor, True)]


async def test_an_album_takedown_covers_its_tracks_and_an_artist_takedown_everything_they_lead(
    catalog: Stub, people: People, kafka_bootstrap: str
) -> None:
    word = _word()
    admin = people.admin.metadata
    artist = await catalog.CreateArtist(
        catalog_pb2.CreateArtistRequest(name=f"Artist {word}"), metadata=admin
    )
    album_id, tracks = await _album_with_tracks(catalog, people, word, artist.id)
    consumer = await asyncio.to_thread(kafka_tail.tail, kafka_bootstrap, topics.CATALOG_CHANGES.name)
    try:
        await catalog.TakeDownContent(_take_down("albums", album_id), metadata=admin)
        assert (
            await _status(catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album_id)))
            == grpc.StatusCode.NOT_FOUND
        )
        assert await _visible(catalog, word, tracks) == {"by id": False, "search": False}
        discography = await catalog.ListArtistAlbums(catalog_pb2.ListArtistAlbumsRequest(id=artist.id))
        assert (list(discography.items), discography.total) == ([], 0)

        # The artist's takedown on top: the artist goes too; lifting the album's changes nothing shown.
        await catalog.TakeDownContent(_take_down("artists", artist.id), metadata=admin)
        assert (
            await _status(catalog.GetArtist(catalog_pb2.GetArtistRequest(id=artist.id)))
            == grpc.StatusCode.NOT_FOUND
        )
        lifted = await catalog.RestoreContent(_restore("albums", album_id), metadata=admin)
        assert lifted.was_taken_down
        assert await _visible(catalog, word, tracks) == {"by id": False, "search": False}

        await catalog.RestoreContent(_restore("artists", artist.id), metadata=admin)
        assert await _visible(catalog, word, tracks) == {"by id": True, "search": True}
        assert (await catalog.GetArtist(catalog_pb2.GetArtistRequest(id=artist.id))).id == artist.id

        found = await asyncio.to_thread(_events, consumer, [album_id, artist.id, *tracks])
    finally:
        consumer.close()
    # One deletion when each left the reads (the album's takedown) and one creation when it came
    # back (the artist's restore): the takedowns in between changed nothing anyone could see.
    deleted, created = Event.CHANGE_KIND_DELETED, Event.CHANGE_KIND_CREATED
    for key in (album_id, *tracks):
        assert [e.change_kind for e in found[key]] == [deleted, created], key
    assert [e.change_kind for e in found[artist.id]] == [deleted, created]
    assert found[album_id][1].album.id == album_id


async def test_who_may_take_down_and_restore(
    catalog: Stub,
    people: People,
    stored: Callable[[], dict[str, object]],
    audit_rows: Callable[[str], list[tuple[str, str, bool]]],
) -> None:
    word = _word()
    album_id, (track_id,) = await _album_with_tracks(catalog, people, word, people.artist_a_id, n=1)
    before = stored()
    refusals = {
        "anonymous": await _status(catalog.TakeDownContent(_take_down("tracks", track_id))),
        "listener": await _status(
            catalog.TakeDownContent(_take_down("tracks", track_id), metadata=people.listener.metadata)
        ),
        "another artist": await _status(
            catalog.TakeDownContent(_take_down("tracks", track_id), metadata=people.artist_b.metadata)
        ),
        "another artist, the album": await _status(
            catalog.TakeDownContent(_take_down("albums", album_id), metadata=people.artist_b.metadata)
        ),
        "the owner, the artist as a whole": await _status(
            catalog.TakeDownContent(
                _take_down("artists", people.artist_a_id), metadata=people.artist_a.metadata
            )
        ),
    }
    assert refusals == {
        "anonymous": grpc.StatusCode.UNAUTHENTICATED,
        "listener": grpc.StatusCode.PERMISSION_DENIED,
        "another artist": grpc.StatusCode.PERMISSION_DENIED,
        "another artist, the album": grpc.StatusCode.PERMISSION_DENIED,
        "the owner, the artist as a whole": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert stored() == before
    refused_by = str(people.artist_b.user_id)
    assert audit_rows(track_id) == [("catalog.take_down", refused_by, False)]

    # An admin's takedown is the admins' to change or lift: the owning artist may not.
    await catalog.TakeDownContent(
        _take_down("tracks", track_id, "court order"), metadata=people.admin.metadata
    )
    try:
        owner = people.artist_a.metadata
        assert await _status(catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert await _status(
            catalog.TakeDownContent(_take_down("tracks", track_id, "mine"), metadata=owner)
        ) == (grpc.StatusCode.PERMISSION_DENIED)
        assert (
            await _status(catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id)))
            == grpc.StatusCode.NOT_FOUND
        )
    finally:
        restored = await catalog.RestoreContent(_restore("tracks", track_id), metadata=people.admin.metadata)
    assert restored.was_taken_down


async def test_retries_change_nothing_and_bad_requests_are_refused(
    catalog: Stub, people: People, stored: Callable[[], dict[str, object]]
) -> None:
    word = _word()
    _album_id, (track_id,) = await _album_with_tracks(catalog, people, word, people.artist_a_id, n=1)
    owner = people.artist_a.metadata
    before = stored()
    bad = {
        "collection": catalog_pb2.TakeDownContentRequest(collection="songs", id=track_id, reason="x"),
        "empty reason": _take_down("tracks", track_id, "   "),
        "long reason": _take_down("tracks", track_id, "x" * 501),
        "id": _take_down("tracks", "not-an-id"),
    }
    statuses = {
        name: await _status(catalog.TakeDownContent(request, metadata=owner)) for name, request in bad.items()
    }
    assert statuses == dict.fromkeys(bad, grpc.StatusCode.INVALID_ARGUMENT)
    unknown = ids.encode(ids.new_id())
    assert await _status(catalog.TakeDownContent(_take_down("tracks", unknown), metadata=owner)) == (
        grpc.StatusCode.NOT_FOUND
    )
    not_down = await catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)
    assert not not_down.was_taken_down
    assert stored() == before

    first = await catalog.TakeDownContent(_take_down("tracks", track_id, "first"), metadata=owner)
    try:
        events_after_first = stored()["events written"]
        again = await catalog.TakeDownContent(_take_down("tracks", track_id, "second"), metadata=owner)
        assert (again.reason, again.taken_down_at) == ("second", first.taken_down_at)
        assert stored()["events written"] == events_after_first  # nothing left the reads again
    finally:
        await catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)
    twice = await catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)
    assert not twice.was_taken_down


async def test_admins_list_what_is_down_newest_first_and_nobody_else_may(
    catalog: Stub, people: People
) -> None:
    word = _word()
    _album_id, (track_id,) = await _album_with_tracks(catalog, people, word, people.artist_a_id, n=1)
    other_album, (_other_track,) = await _album_with_tracks(catalog, people, word, people.artist_a_id, n=1)
    admin, owner = people.admin.metadata, people.artist_a.metadata
    await catalog.TakeDownContent(_take_down("tracks", track_id, "the artist's"), metadata=owner)
    try:
        await catalog.TakeDownContent(_take_down("albums", other_album, "the admin's"), metadata=admin)
        try:
            everything = await catalog.ListTakedowns(
                catalog_pb2.ListTakedownsRequest(limit=50), metadata=admin
            )
            listed = [(t.uri, t.reason, t.by_admin) for t in everything.takedowns]
            assert listed[:2] == [
                (f"spotify:album:{other_album}", "the admin's", True),
                (f"spotify:track:{track_id}", "the artist's", False),
            ]
            assert everything.total == len(listed)  # the tests before this one restored theirs

            albums = await catalog.ListTakedowns(
                catalog_pb2.ListTakedownsRequest(collection="albums"), metadata=admin
            )
            assert [t.uri for t in albums.takedowns] == [f"spotify:album:{other_album}"]
            assert albums.total == 1 and not albums.next_page_token

            first = await catalog.ListTakedowns(catalog_pb2.ListTakedownsRequest(page_size=1), metadata=admin)
            second = await catalog.ListTakedowns(
                catalog_pb2.ListTakedownsRequest(page_size=1, page_token=first.next_page_token),
                metadata=admin,
            )
            assert [t.uri for t in (*first.takedowns, *second.takedowns)] == [uri for uri, *_ in listed[:2]]

            refusals = {
                "anonymous": await _status(catalog.ListTakedowns(catalog_pb2.ListTakedownsRequest())),
                "listener": await _status(
                    catalog.ListTakedowns(
                        catalog_pb2.ListTakedownsRequest(), metadata=people.listener.metadata
                    )
                ),
                "the owning artist": await _status(
                    catalog.ListTakedowns(catalog_pb2.ListTakedownsRequest(), metadata=owner)
                ),
                "an unknown collection": await _status(
                    catalog.ListTakedowns(
                        catalog_pb2.ListTakedownsRequest(collection="songs"), metadata=admin
                    )
                ),
            }
            assert refusals == {
                "anonymous": grpc.StatusCode.UNAUTHENTICATED,
                "listener": grpc.StatusCode.PERMISSION_DENIED,
                "the owning artist": grpc.StatusCode.PERMISSION_DENIED,
                "an unknown collection": grpc.StatusCode.INVALID_ARGUMENT,
            }
        finally:
            await catalog.RestoreContent(_restore("albums", other_album), metadata=admin)
    finally:
        await catalog.RestoreContent(_restore("tracks", track_id), metadata=owner)
