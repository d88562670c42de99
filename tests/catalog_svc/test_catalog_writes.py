"""Catalog writes: who may write what, validation that changes nothing, retries, and change events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc import aio
from kafka import KafkaConsumer
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.common.v1 import common_pb2
from sqlalchemy import create_engine, text

from meshctl.mesh import Mesh
from meshkit import ids, topics
from tests import kafka_tail

if TYPE_CHECKING:
    from conftest import People

Stub = catalog_pb2_grpc.CatalogServiceStub
OK = grpc.StatusCode.OK
ANONYMOUS: tuple[tuple[str, str], ...] = ()


async def _status(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except aio.AioRpcError as exc:
        return exc.code()
    return OK


async def _error(call: Awaitable[object]) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as err:
        await call
    return err.value


def _unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def counts(catalog_database_url: str) -> Iterator[Callable[[], dict[str, int]]]:
    """Row counts of everything a write could touch, to show that a refused write changed nothing.

    Events are counted by the outbox's id sequence, not its rows: relays delete rows once
    published, at any moment.
    """
    engine = create_engine(catalog_database_url)
    tables = ("artists", "albums", "tracks", "track_artists", "album_artists", "write_requests")

    def snapshot() -> dict[str, int]:
        with engine.connect() as conn:
            found = {t: conn.execute(text(f"SELECT count(*) FROM catalog.{t}")).scalar_one() for t in tables}
            events = conn.execute(
                text("SELECT pg_sequence_last_value('catalog.outbox_events_id_seq')")
            ).scalar()
            return {**found, "events written": events or 0}

    yield snapshot
    engine.dispose()


@pytest.fixture(scope="module")
async def album_of_a(catalog: Stub, people: People) -> catalog_pb2.Album:
    return await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(name=_unique("Album of A"), artist_ids=[people.artist_a_id]),
        metadata=people.admin.metadata,
    )


# ---- permissions --------------------------------------------------------------------------------


def _callers(people: People) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        "admin": people.admin.metadata,
        "owner": people.artist_a.metadata,
        "other artist": people.artist_b.metadata,
        "listener": people.listener.metadata,
        "anonymous": ANONYMOUS,
    }


EXPECTED = {
    "admin": OK,
    "owner": OK,
    "other artist": grpc.StatusCode.PERMISSION_DENIED,
    "listener": grpc.StatusCode.PERMISSION_DENIED,
    "anonymous": grpc.StatusCode.UNAUTHENTICATED,
}


async def test_create_artist_is_for_admins_only(catalog: Stub, people: People) -> None:
    results = {}
    for who, metadata in _callers(people).items():
        request = catalog_pb2.CreateArtistRequest(name=_unique("New Artist"), genres=["jazz"])
        results[who] = await _status(catalog.CreateArtist(request, metadata=metadata))
    assert results == {**EXPECTED, "owner": grpc.StatusCode.PERMISSION_DENIED}


async def test_update_artist_matrix(catalog: Stub, people: People) -> None:
    results = {}
    for who, metadata in _callers(people).items():
        request = catalog_pb2.UpdateArtistRequest(id=people.artist_a_id, genres=["rock", "folk"])
        results[who] = await _status(catalog.UpdateArtist(request, metadata=metadata))
    assert results == EXPECTED


async def test_create_album_matrix_and_every_listed_artist_must_be_managed(
    catalog: Stub, people: People
) -> None:
    results = {}
    for who, metadata in _callers(people).items():
        request = catalog_pb2.CreateAlbumRequest(name=_unique("Matrix"), artist_ids=[people.artist_a_id])
        results[who] = await _status(catalog.CreateAlbum(request, metadata=metadata))
    assert results == EXPECTED
    both = catalog_pb2.CreateAlbumRequest(
        name=_unique("Split"), artist_ids=[people.artist_a_id, people.artist_b_id]
    )
    assert await _status(catalog.CreateAlbum(both, metadata=people.artist_a.metadata)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    made = await catalog.CreateAlbum(both, metadata=people.admin.metadata)
    assert [a.id for a in made.artists] == [people.artist_a_id, people.artist_b_id]


async def test_album_and_track_updates_matrix(
    catalog: Stub, people: People, album_of_a: catalog_pb2.Album
) -> None:
    track = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album_of_a.id, name="Matrix Track", track_number=90),
        metadata=people.admin.metadata,
    )
    numbers = iter(range(100, 200))
    for rpc, make in (
        ("UpdateAlbum", lambda: catalog_pb2.UpdateAlbumRequest(id=album_of_a.id, label=_unique("Label"))),
        ("UpdateTrack", lambda: catalog_pb2.UpdateTrackRequest(id=track.id, explicit=True)),
        (
            "CreateTrack",
            lambda: catalog_pb2.CreateTrackRequest(
                album_id=album_of_a.id, name="T", track_number=next(numbers)
            ),
        ),
    ):
        results = {}
        for who, metadata in _callers(people).items():
            results[who] = await _status(getattr(catalog, rpc)(make(), metadata=metadata))
        assert results == EXPECTED, rpc


async def test_an_artist_cannot_move_an_album_to_an_artist_they_do_not_manage(
    catalog: Stub, people: People, album_of_a: catalog_pb2.Album
) -> None:
    steal = catalog_pb2.UpdateAlbumRequest(id=album_of_a.id, artist_ids=[people.artist_b_id])
    assert await _status(catalog.UpdateAlbum(steal, metadata=people.artist_a.metadata)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    album = await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album_of_a.id))
    assert [a.id for a in album.artists] == [people.artist_a_id]


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpc", "make", "field"),
    [
        ("CreateArtist", lambda p, a: catalog_pb2.CreateArtistRequest(name=""), "name"),
        ("CreateArtist", lambda p, a: catalog_pb2.CreateArtistRequest(name="x" * 201), "name"),
        (
            "CreateArtist",
            lambda p, a: catalog_pb2.CreateArtistRequest(
                name="Managed", manager_user_ids=[p.admin.user_id.hex]
            ),
            "manager_user_ids",
        ),
        (
            "CreateArtist",
            lambda p, a: catalog_pb2.CreateArtistRequest(
                name="Pic", images=[common_pb2.Image(url="javascript:alert(1)")]
            ),
            "images",
        ),
        (
            "CreateAlbum",
            lambda p, a: catalog_pb2.CreateAlbumRequest(
                name="A", artist_ids=[p.artist_a_id], album_type="mixtape"
            ),
            "album_type",
        ),
        (
            "CreateAlbum",
            lambda p, a: catalog_pb2.CreateAlbumRequest(
                name="A", artist_ids=[p.artist_a_id], release_date="2019-02-30"
            ),
            "release_date",
        ),
        (
            "CreateAlbum",
            lambda p, a: catalog_pb2.CreateAlbumRequest(
                name="A", artist_ids=[p.artist_a_id], release_date="2019", release_date_precision="day"
            ),
            "release_date_precision",
        ),
        ("CreateAlbum", lambda p, a: catalog_pb2.CreateAlbumRequest(name="A"), "artist_ids"),
        (
            "CreateAlbum",
            lambda p, a: catalog_pb2.CreateAlbumRequest(name="A", artist_ids=["nope"]),
            "artist id",
        ),
        (
            "CreateTrack",
            lambda p, a: catalog_pb2.CreateTrackRequest(album_id=a.id, name="T", track_number=0),
            "track_number",
        ),
        (
            "CreateTrack",
            lambda p, a: catalog_pb2.CreateTrackRequest(album_id=a.id, name="T", track_number=1, isrc="bad"),
            "isrc",
        ),
        ("CreateTrack", lambda p, a: catalog_pb2.CreateTrackRequest(name="T", track_number=1), "album_id"),
        ("UpdateAlbum", lambda p, a: catalog_pb2.UpdateAlbumRequest(id=a.id), "nothing to update"),
        (
            "UpdateAlbum",
            lambda p, a: catalog_pb2.UpdateAlbumRequest(id=a.id, update_mask=FieldMask(paths=["popularity"])),
            "update_mask",
        ),
        (
            "UpdateAlbum",
            lambda p, a: catalog_pb2.UpdateAlbumRequest(id=a.id, release_date_precision="year"),
            "release_date_precision",
        ),
        (
            "UpdateAlbum",
            lambda p, a: catalog_pb2.UpdateAlbumRequest(
                id=a.id, name="", update_mask=FieldMask(paths=["name"])
            ),
            "name",
        ),
    ],
)
async def test_invalid_writes_are_400_with_the_field_and_change_nothing(
    catalog: Stub,
    people: People,
    album_of_a: catalog_pb2.Album,
    counts: Callable[[], dict[str, int]],
    rpc: str,
    make: Callable,
    field: str,
) -> None:
    before = counts()
    album_before = await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album_of_a.id))
    error = await _error(getattr(catalog, rpc)(make(people, album_of_a), metadata=people.admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()
    assert counts() == before
    assert await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album_of_a.id)) == album_before


async def test_unknown_parents_and_targets_are_404(catalog: Stub, people: People) -> None:
    admin = people.admin.metadata
    nobody = ids.encode(uuid.uuid4())
    for call in (
        catalog.CreateAlbum(
            catalog_pb2.CreateAlbumRequest(name="Orphan", artist_ids=[nobody]), metadata=admin
        ),
        catalog.CreateTrack(
            catalog_pb2.CreateTrackRequest(album_id=nobody, name="T", track_number=1), metadata=admin
        ),
        catalog.UpdateArtist(catalog_pb2.UpdateArtistRequest(id=nobody, name="X"), metadata=admin),
        catalog.UpdateAlbum(catalog_pb2.UpdateAlbumRequest(id=nobody, name="X"), metadata=admin),
        catalog.UpdateTrack(catalog_pb2.UpdateTrackRequest(id=nobody, name="X"), metadata=admin),
    ):
        error = await _error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND and nobody in error.details()


async def test_a_taken_track_position_is_409(
    catalog: Stub, people: People, album_of_a: catalog_pb2.Album
) -> None:
    admin = people.admin.metadata
    await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album_of_a.id, name="First", track_number=7), metadata=admin
    )
    again = catalog_pb2.CreateTrackRequest(album_id=album_of_a.id, name="Clash", track_number=7)
    assert await _status(catalog.CreateTrack(again, metadata=admin)) == grpc.StatusCode.ALREADY_EXISTS
    second_disc = catalog_pb2.CreateTrackRequest(
        album_id=album_of_a.id, name="Fine", track_number=7, disc_number=2
    )
    assert await _status(catalog.CreateTrack(second_disc, metadata=admin)) == OK


# ---- the writes themselves ------------------------------------------------------------------------


async def test_create_then_update_album_and_track(catalog: Stub, people: People) -> None:
    owner = people.artist_a.metadata
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name="  Night   Drive ",
            artist_ids=[f"spotify:artist:{people.artist_a_id}"],
            album_type="ep",
            release_date="2021-06",
            label="Indie",
            upc="012345678905",
            images=[common_pb2.Image(url="https://img.example/a.jpg", height=300, width=300)],
            copyrights=[common_pb2.Copyright(text="(C) 2021 A", type="c")],
            available_markets=["se", "DE"],
        ),
        metadata=owner,
    )
    assert (album.name, album.album_type, album.release_date, album.release_date_precision) == (
        "Night Drive",
        "ep",
        "2021-06",
        "month",
    )
    assert (album.label, album.external_ids.upc, album.total_tracks, album.tracks.total) == (
        "Indie",
        "012345678905",
        0,
        0,
    )
    assert [(i.url, i.height) for i in album.images] == [("https://img.example/a.jpg", 300)]
    assert [(c.text, c.type) for c in album.copyrights] == [("(C) 2021 A", "C")]
    assert list(album.available_markets) == ["SE", "DE"]

    track = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(
            album_id=album.id, name="Headlights", track_number=1, isrc="usrc17607839"
        ),
        metadata=owner,
    )
    assert track.artists[0].id == people.artist_a_id  # the album's artists by default
    assert (track.album.id, track.external_ids.isrc, track.duration_ms) == (album.id, "USRC17607839", 0)
    assert (await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=album.id))).total_tracks == 1
    fr = await catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track.id, market="FR"))
    assert fr.is_playable is False  # the album is only available in SE and DE

    renamed = await catalog.UpdateTrack(
        catalog_pb2.UpdateTrackRequest(id=track.id, name="Tail Lights", explicit=True), metadata=owner
    )
    assert (renamed.name, renamed.explicit, renamed.track_number) == ("Tail Lights", True, 1)
    cleared = await catalog.UpdateTrack(
        catalog_pb2.UpdateTrackRequest(id=track.id, update_mask=FieldMask(paths=["isrc"])), metadata=owner
    )
    assert cleared.external_ids.isrc == "" and cleared.name == "Tail Lights"

    redated = await catalog.UpdateAlbum(
        catalog_pb2.UpdateAlbumRequest(id=album.id, release_date="2022-01-15", name="Night Drive (Deluxe)"),
        metadata=owner,
    )
    assert (redated.release_date, redated.release_date_precision, redated.name) == (
        "2022-01-15",
        "day",
        redated.name,
    )
    assert redated.label == "Indie" and redated.tracks.items[0].name == "Tail Lights"


async def test_update_artist_by_its_manager(catalog: Stub, people: People) -> None:
    artist = await catalog.UpdateArtist(
        catalog_pb2.UpdateArtistRequest(
            id=people.artist_b_id,
            images=[common_pb2.Image(url="https://img.example/b.png", height=640, width=640)],
        ),
        metadata=people.artist_b.metadata,
    )
    assert [i.url for i in artist.images] == ["https://img.example/b.png"]
    assert list(artist.genres) == ["rock"]  # untouched: not in the request
    refused = catalog_pb2.UpdateArtistRequest(
        id=people.artist_b_id, manager_user_ids=[ids.encode(uuid.uuid4())]
    )
    assert await _status(catalog.UpdateArtist(refused, metadata=people.admin.metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# ---- idempotency ----------------------------------------------------------------------------------


async def test_a_retried_create_returns_the_first_result(
    catalog: Stub, people: People, counts: Callable[[], dict[str, int]]
) -> None:
    request = catalog_pb2.CreateArtistRequest(
        request_id=uuid.uuid4().hex, name=_unique("Retry"), genres=["pop"]
    )
    first = await catalog.CreateArtist(request, metadata=people.admin.metadata)
    after_first = counts()
    again = await catalog.CreateArtist(request, metadata=people.admin.metadata)
    assert again.id == first.id
    assert counts() == after_first  # no second artist, no second event
    reused = catalog_pb2.CreateArtistRequest(request_id=request.request_id, name=_unique("Different"))
    error = await _error(catalog.CreateArtist(reused, metadata=people.admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in error.details()


async def test_a_request_id_the_store_cannot_hold_is_refused(
    catalog: Stub, people: People, counts: Callable[[], dict[str, int]]
) -> None:
    before = counts()
    for request_id in ("nul\x00key", "k" * 201):
        request = catalog_pb2.CreateArtistRequest(request_id=request_id, name=_unique("Keyed"))
        error = await _error(catalog.CreateArtist(request, metadata=people.admin.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in error.details()
    assert counts() == before  # no artist, no write request, no event


async def test_concurrent_duplicates_create_once(
    catalog: Stub, people: People, catalog_database_url: str
) -> None:
    name = _unique("Twins")
    request = catalog_pb2.CreateAlbumRequest(
        request_id=uuid.uuid4().hex, name=name, artist_ids=[people.artist_a_id]
    )
    replies = await asyncio.gather(
        *(catalog.CreateAlbum(request, metadata=people.artist_a.metadata) for _ in range(4))
    )
    assert len({r.id for r in replies}) == 1
    engine = create_engine(catalog_database_url)
    try:
        with engine.connect() as conn:
            made = conn.execute(
                text("SELECT count(*) FROM catalog.albums WHERE title = :t"), {"t": name}
            ).scalar()
    finally:
        engine.dispose()
    assert made == 1


async def test_idempotency_key_header_and_per_user_scope(catalog: Stub, people: People) -> None:
    key = uuid.uuid4().hex
    request = catalog_pb2.UpdateArtistRequest(id=people.artist_a_id, name=_unique("Header Retry"))
    first = await catalog.UpdateArtist(
        request, metadata=(*people.artist_a.metadata, ("idempotency-key", key))
    )
    changed = catalog_pb2.UpdateArtistRequest(id=people.artist_a_id, name=_unique("Admin rename"))
    # The same key from another user is another request: keys are scoped per caller.
    by_admin = await catalog.UpdateArtist(
        changed, metadata=(*people.admin.metadata, ("idempotency-key", key))
    )
    assert by_admin.name == changed.name != first.name


# ---- change events and search freshness -----------------------------------------------------------


def _events_consumer(bootstrap: str) -> KafkaConsumer:
    return kafka_tail.tail(bootstrap, topics.CATALOG_CHANGES.name)


def _wait_for_events(consumer: KafkaConsumer, expected: dict[str, int], timeout: float = 20) -> dict:
    """Events per entity id, polled until each id has its `expected` number (or the deadline)."""
    found: dict[str, list[catalog_pb2.CatalogChangeEvent]] = {}
    deadline = time.monotonic() + timeout

    def complete() -> bool:
        return all(len(found.get(key, [])) >= n for key, n in expected.items())

    while time.monotonic() < deadline and not complete():
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                event = catalog_pb2.CatalogChangeEvent.FromString(record.value)
                if event.id in expected:
                    assert record.key.decode() == event.id  # keyed by entity id
                    found.setdefault(event.id, []).append(event)
    return found


async def test_writes_publish_change_events_after_commit(
    catalog: Stub, people: People, kafka_bootstrap: str
) -> None:
    consumer = await asyncio.to_thread(_events_consumer, kafka_bootstrap)
    try:
        artist = await catalog.CreateArtist(
            catalog_pb2.CreateArtistRequest(name=_unique("Evented"), genres=["ambient"]),
            metadata=people.admin.metadata,
        )
        album = await catalog.CreateAlbum(
            catalog_pb2.CreateAlbumRequest(name="Evented Album", artist_ids=[artist.id]),
            metadata=people.admin.metadata,
        )
        track = await catalog.CreateTrack(
            catalog_pb2.CreateTrackRequest(album_id=album.id, name="Evented Track", track_number=1),
            metadata=people.admin.metadata,
        )
        renamed = await catalog.UpdateTrack(
            catalog_pb2.UpdateTrackRequest(id=track.id, name="Evented Track (Edit)"),
            metadata=people.admin.metadata,
        )
        found = await asyncio.to_thread(_wait_for_events, consumer, {artist.id: 1, album.id: 1, track.id: 2})
    finally:
        consumer.close()
    event_type = catalog_pb2.CatalogChangeEvent
    assert [e.entity_type for e in found[artist.id]] == [event_type.ENTITY_TYPE_ARTIST]
    assert found[artist.id][0].artist.name == artist.name
    assert found[album.id][0].album.artists[0].id == artist.id
    kinds = [(e.change_kind, e.track.name) for e in found[track.id]]
    assert kinds == [
        (event_type.CHANGE_KIND_CREATED, "Evented Track"),
        (event_type.CHANGE_KIND_UPDATED, renamed.name),
    ]
    assert all(e.actor_id == ids.encode(people.admin.user_id) for e in found[track.id])
    assert len({e.event_id for e in found[track.id]}) == 2


async def test_new_and_changed_entries_are_searchable_at_once(catalog: Stub, people: People) -> None:
    word = f"zq{uuid.uuid4().hex[:6]}"
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(name=f"Fresh {word}", artist_ids=[people.artist_a_id]),
        metadata=people.admin.metadata,
    )
    track = await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(album_id=album.id, name=f"Brand New {word}", track_number=1),
        metadata=people.admin.metadata,
    )
    found = await catalog.Search(catalog_pb2.SearchRequest(q=word, type="track,album"))
    assert [t.id for t in found.tracks.items] == [track.id]
    assert [a.id for a in found.albums.items] == [album.id]
    other = f"zq{uuid.uuid4().hex[:6]}"
    await catalog.UpdateTrack(
        catalog_pb2.UpdateTrackRequest(id=track.id, name=f"Renamed {other}"), metadata=people.admin.metadata
    )
    assert (
        await catalog.Search(catalog_pb2.SearchRequest(q=f"brand new {word}", type="track"))
    ).tracks.total == 0
    assert [
        t.id for t in (await catalog.Search(catalog_pb2.SearchRequest(q=other, type="track"))).tracks.items
    ] == [track.id]


# ---- JSON through Envoy -----------------------------------------------------------------------------


@pytest.mark.e2e
def test_json_writes_need_a_session_and_work_with_one(running_mesh: Mesh, admin_token: str) -> None:
    body = {"name": _unique("JSON Artist"), "genres": ["jazz"]}
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10) as anonymous:
        assert anonymous.post("/api/catalog/artists", json=body).status_code == 401
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10) as client:
        token = {"authorization": f"Bearer {admin_token}"}
        created = client.post("/api/catalog/artists", json=body, headers=token)
        assert created.status_code == 200, created.text
        artist = created.json()
        assert artist["name"] == body["name"] and artist["type"] == "artist"
        renamed = client.patch(
            f"/api/catalog/artists/{artist['id']}", json={"name": body["name"] + " II"}, headers=token
        )
        assert renamed.status_code == 200 and renamed.json()["name"].endswith(" II")
        bad = client.post(
            "/api/catalog/albums", json={"name": "", "artist_ids": [artist["id"]]}, headers=token
        )
        assert bad.status_code == 400 and "name" in bad.text, bad.text
