"""Browse RPCs over gRPC against the in-process catalog (demo data), and as JSON through Envoy."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from sqlalchemy import create_engine, text

from catalog_svc.seed import SeedAlbum, SeedArtist, SeedTrack, load_catalog
from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids, paging

if TYPE_CHECKING:
    from conftest import People

Stub = catalog_pb2_grpc.CatalogServiceStub

LOUD_VALLEYS = demo.DEMO_ARTIST_ID
FIRST_ALBUM = ids.encode(demo.demo_uuid("album:The Loud Valleys:0"))
SECOND_ALBUM = ids.encode(demo.demo_uuid("album:The Loud Valleys:1"))
THIRD_ALBUM = ids.encode(demo.demo_uuid("album:The Loud Valleys:2"))
NEON_TRACK = ids.encode(demo.demo_uuid("track:Neon Cascade:0:1"))
# The last demo track in audio order: tests/conftest.py ingests audio for only the first few.
SILENT_TRACK = ids.encode(demo.demo_uuid("track:Drift Atlas:1:4"))


async def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as err:
        await call()  # type: ignore[misc]
    return err.value.code()


# ---- tracks -----------------------------------------------------------------------------------


async def test_track_is_a_full_spotify_track(catalog: Stub) -> None:
    track = await catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    assert (track.id, track.type, track.uri) == (
        demo.DEMO_TRACK_ID,
        "track",
        f"spotify:track:{demo.DEMO_TRACK_ID}",
    )
    assert track.href == f"http://catalog.test/v1/tracks/{demo.DEMO_TRACK_ID}"
    # tests/conftest.py ingests 6 s of real audio for the demo track: ingest sets the measured duration.
    assert track.name == "Midnight" and 5_900 <= track.duration_ms <= 6_100
    assert track.preview_url.endswith(f"/media/tracks/{demo.DEMO_TRACK_ID}_preview.ogg")
    assert (track.track_number, track.disc_number, track.explicit) == (1, 1, False)
    assert [a.name for a in track.artists] == ["The Loud Valleys"]
    assert track.album.id == FIRST_ALBUM and track.album.album_type == "album"
    assert track.album.artists[0].id == LOUD_VALLEYS
    assert track.popularity == 70
    assert not track.HasField("is_playable")  # only with a market


async def test_market_sets_is_playable_and_is_validated(catalog: Stub) -> None:
    track = await catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID, market="se"))
    assert track.HasField("is_playable") and track.is_playable  # demo albums are available everywhere
    bad = catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID, market="Sweden")
    assert await _code(lambda: catalog.GetTrack(bad)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_multi_get_keeps_order_and_leaves_unknown_ids_out(catalog: Stub) -> None:
    unknown = ids.encode(uuid.uuid4())
    reply = await catalog.BatchGetTracks(
        catalog_pb2.BatchGetTracksRequest(ids=f"{NEON_TRACK},{unknown},spotify:track:{demo.DEMO_TRACK_ID}")
    )
    assert [t.id for t in reply.tracks] == [NEON_TRACK, demo.DEMO_TRACK_ID]


@pytest.mark.parametrize(
    ("rpc", "request_type", "limit"),
    [
        ("BatchGetTracks", catalog_pb2.BatchGetTracksRequest, 50),
        ("BatchGetAlbums", catalog_pb2.BatchGetAlbumsRequest, 20),
        ("BatchGetArtists", catalog_pb2.BatchGetArtistsRequest, 50),
        ("BatchGetAudioFeatures", catalog_pb2.BatchGetAudioFeaturesRequest, 100),
    ],
)
async def test_multi_gets_enforce_their_limits(
    catalog: Stub, rpc: str, request_type: type, limit: int
) -> None:
    one_too_many = ",".join(ids.encode(uuid.uuid4()) for _ in range(limit + 1))
    method = getattr(catalog, rpc)
    assert await _code(lambda: method(request_type(ids=one_too_many))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(lambda: method(request_type(ids=""))) == grpc.StatusCode.INVALID_ARGUMENT
    exactly = ",".join(ids.encode(uuid.uuid4()) for _ in range(limit))
    await method(request_type(ids=exactly))  # unknown ids are fine: an empty answer


# ---- albums -----------------------------------------------------------------------------------


async def test_album_embeds_a_paging_object_of_simplified_tracks(catalog: Stub) -> None:
    album = await catalog.GetAlbum(catalog_pb2.GetAlbumRequest(id=FIRST_ALBUM))
    assert (album.type, album.album_type, album.total_tracks) == ("album", "album", 5)
    assert album.release_date_precision == "day" and len(album.release_date) == 10
    assert album.label == "Demo Records"
    assert [a.id for a in album.artists] == [LOUD_VALLEYS]
    page = album.tracks
    assert (page.total, page.limit, page.offset, page.next, page.previous) == (5, 50, 0, "", "")
    assert page.href == f"http://catalog.test/v1/albums/{FIRST_ALBUM}/tracks?offset=0&limit=50"
    assert [t.track_number for t in page.items] == [1, 2, 3, 4, 5]
    first = page.items[0]
    assert first.id == demo.DEMO_TRACK_ID and first.artists[0].id == LOUD_VALLEYS
    assert not first.HasField("album") and first.popularity == 0  # simplified


async def test_album_tracks_page_forward_and_back(catalog: Stub) -> None:
    page = await catalog.ListAlbumTracks(
        catalog_pb2.ListAlbumTracksRequest(id=FIRST_ALBUM, limit=2, offset=2)
    )
    assert [t.track_number for t in page.items] == [3, 4]
    assert (page.total, page.limit, page.offset) == (5, 2, 2)
    assert _query(page.next) == {"offset": ["4"], "limit": ["2"]}
    assert _query(page.previous) == {"offset": ["0"], "limit": ["2"]}
    assert paging.decode_token(page.next_page_token) == 4
    last = await catalog.ListAlbumTracks(
        catalog_pb2.ListAlbumTracksRequest(id=FIRST_ALBUM, page_size=2, page_token=page.next_page_token)
    )
    assert [t.track_number for t in last.items] == [5]
    assert (last.next, last.next_page_token) == ("", "")
    default = await catalog.ListAlbumTracks(catalog_pb2.ListAlbumTracksRequest(id=FIRST_ALBUM))
    assert default.limit == 20 and len(default.items) == 5


@pytest.mark.parametrize("window", [{"limit": 51}, {"limit": -1}, {"offset": -3}, {"page_token": "x"}])
async def test_bad_windows_are_invalid(catalog: Stub, window: dict) -> None:
    request = catalog_pb2.ListAlbumTracksRequest(id=FIRST_ALBUM, **window)
    assert await _code(lambda: catalog.ListAlbumTracks(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_and_malformed_album_ids(catalog: Stub) -> None:
    missing = catalog_pb2.GetAlbumRequest(id=ids.encode(uuid.uuid4()))
    assert await _code(lambda: catalog.GetAlbum(missing)) == grpc.StatusCode.NOT_FOUND
    tracks = catalog_pb2.ListAlbumTracksRequest(id=ids.encode(uuid.uuid4()))
    assert await _code(lambda: catalog.ListAlbumTracks(tracks)) == grpc.StatusCode.NOT_FOUND
    bad = catalog_pb2.GetAlbumRequest(id="not-an-id")
    assert await _code(lambda: catalog.GetAlbum(bad)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_albums_each_carry_their_tracks(catalog: Stub) -> None:
    reply = await catalog.BatchGetAlbums(
        catalog_pb2.BatchGetAlbumsRequest(ids=f"{SECOND_ALBUM},{FIRST_ALBUM}")
    )
    assert [a.id for a in reply.albums] == [SECOND_ALBUM, FIRST_ALBUM]
    assert [a.album_type for a in reply.albums] == ["single", "album"]
    assert all(a.tracks.total == 5 and len(a.tracks.items) == 5 for a in reply.albums)
    assert reply.albums[0].tracks.items[0].id == ids.encode(demo.demo_uuid("track:The Loud Valleys:1:0"))


# ---- artists ----------------------------------------------------------------------------------


async def test_artist_and_batch(catalog: Stub) -> None:
    artist = await catalog.GetArtist(catalog_pb2.GetArtistRequest(id=LOUD_VALLEYS))
    assert (artist.name, list(artist.genres), artist.followers.total, artist.popularity) == (
        "The Loud Valleys",
        ["rock"],
        16_000,
        80,
    )
    other = ids.encode(demo.demo_uuid("artist:Café Nocturne"))
    reply = await catalog.BatchGetArtists(
        catalog_pb2.BatchGetArtistsRequest(ids=f"{other},{ids.encode(uuid.uuid4())},{LOUD_VALLEYS}")
    )
    assert [a.name for a in reply.artists] == ["Café Nocturne", "The Loud Valleys"]


async def test_artist_albums_with_groups_and_paging(catalog: Stub) -> None:
    page = await catalog.ListArtistAlbums(catalog_pb2.ListArtistAlbumsRequest(id=LOUD_VALLEYS))
    # Albums before singles, newest first within a group (the third demo album is from 2017).
    assert [(a.id, a.album_group) for a in page.items] == [
        (THIRD_ALBUM, "album"),
        (FIRST_ALBUM, "album"),
        (SECOND_ALBUM, "single"),
    ]
    assert page.total == 3
    singles = await catalog.ListArtistAlbums(
        catalog_pb2.ListArtistAlbumsRequest(id=LOUD_VALLEYS, include_groups="single", limit=1)
    )
    assert [a.id for a in singles.items] == [SECOND_ALBUM] and singles.total == 1
    assert _query(singles.href) == {"include_groups": ["single"], "offset": ["0"], "limit": ["1"]}
    first = await catalog.ListArtistAlbums(catalog_pb2.ListArtistAlbumsRequest(id=LOUD_VALLEYS, limit=1))
    assert _query(first.next) == {"offset": ["1"], "limit": ["1"]}
    assert [a.id for a in first.items] == [THIRD_ALBUM]
    bad = catalog_pb2.ListArtistAlbumsRequest(id=LOUD_VALLEYS, include_groups="mixtape")
    assert await _code(lambda: catalog.ListArtistAlbums(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = catalog_pb2.ListArtistAlbumsRequest(id=ids.encode(uuid.uuid4()))
    assert await _code(lambda: catalog.ListArtistAlbums(missing)) == grpc.StatusCode.NOT_FOUND


async def test_appears_on_lists_albums_the_artist_is_featured_on(catalog: Stub, people: People) -> None:
    """A track on another artist's album that credits this artist makes that album `appears_on`."""
    admin = people.admin.metadata
    album = await catalog.CreateAlbum(
        catalog_pb2.CreateAlbumRequest(
            name="Guest Spots", artist_ids=[people.artist_b_id], release_date="2020"
        ),
        metadata=admin,
    )
    await catalog.CreateTrack(
        catalog_pb2.CreateTrackRequest(
            album_id=album.id,
            name="Duet",
            track_number=1,
            artist_ids=[people.artist_b_id, people.artist_a_id],
        ),
        metadata=admin,
    )
    page = await catalog.ListArtistAlbums(
        catalog_pb2.ListArtistAlbumsRequest(id=people.artist_a_id, include_groups="appears_on")
    )
    assert [(a.id, a.album_group) for a in page.items] == [(album.id, "appears_on")]
    own = await catalog.ListArtistAlbums(
        catalog_pb2.ListArtistAlbumsRequest(id=people.artist_b_id, include_groups="album,appears_on")
    )
    assert (album.id, "album") in [(a.id, a.album_group) for a in own.items]


async def test_top_tracks_follow_stream_counts(catalog: Stub, catalog_database_url: str) -> None:
    artist = ids.encode(demo.demo_uuid("artist:Harbor Lights"))
    before = await catalog.ListArtistTopTracks(catalog_pb2.ListArtistTopTracksRequest(id=artist))
    assert len(before.tracks) == 10  # 10 of its 10 tracks, most popular first while nobody streamed
    assert [t.popularity for t in before.tracks] == sorted(
        (t.popularity for t in before.tracks), reverse=True
    )
    least = before.tracks[-1].id
    # Streams change the order (the projection writes stream_count; set it directly here, and put
    # the demo row back as it was).
    engine = create_engine(catalog_database_url)
    count = text("SELECT stream_count FROM catalog.tracks WHERE id = :id")
    with engine.connect() as conn:
        original = conn.execute(count, {"id": ids.decode(least)}).scalar_one()
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE catalog.tracks SET stream_count = :n WHERE id = :id"),
                {"n": original + 5, "id": ids.decode(least)},
            )
        after = await catalog.ListArtistTopTracks(catalog_pb2.ListArtistTopTracksRequest(id=artist))
        assert after.tracks[0].id == least
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE catalog.tracks SET stream_count = :n WHERE id = :id"),
                {"n": original, "id": ids.decode(least)},
            )
            restored = conn.execute(count, {"id": ids.decode(least)}).scalar_one()
        engine.dispose()
    assert restored == original


# ---- audio features and genres ----------------------------------------------------------------


async def test_audio_features_come_from_the_track_and_are_404_without(
    catalog: Stub, catalog_database_url: str
) -> None:
    """A track seeded with its analysis (catalog_svc.seed) serves it; one seeded without has none."""
    artist, album, analysed, plain = (uuid.uuid4() for _ in range(4))
    features = {"tempo": 128.0, "energy": 0.8, "loudness": -7.5, "key": 5, "mode": 1, "duration_ms": 61_000}

    def track(track_id: uuid.UUID, number: int, analysis: dict | None) -> SeedTrack:
        return SeedTrack(
            id=track_id,
            album_id=album,
            artist_id=artist,
            title="Analysed",
            duration_ms=60_000,
            track_number=number,
            explicit=False,
            popularity=0,
            audio_features=analysis,
        )

    assert load_catalog(
        catalog_database_url,
        [SeedArtist(artist, "Features Artist", (), False, 0, 0, "")],  # no genres: the demo's stay the list
        [SeedAlbum(album, artist, "Features", date(2020, 1, 1), "album", 2, "")],
        [track(analysed, 1, features), track(plain, 2, None)],
        only_if_empty=False,
    )
    key, without = ids.encode(analysed), ids.encode(plain)
    missing = catalog_pb2.GetAudioFeaturesRequest(id=without)
    assert await _code(lambda: catalog.GetAudioFeatures(missing)) == grpc.StatusCode.NOT_FOUND
    got = await catalog.GetAudioFeatures(catalog_pb2.GetAudioFeaturesRequest(id=key))
    assert (got.id, got.type, got.uri) == (key, "audio_features", f"spotify:track:{key}")
    assert (got.tempo, got.energy, got.loudness, got.key, got.mode, got.duration_ms) == (
        128.0,
        0.8,
        -7.5,
        5,
        1,
        61_000,
    )
    assert got.track_href == f"http://catalog.test/v1/tracks/{key}"
    batch = await catalog.BatchGetAudioFeatures(
        catalog_pb2.BatchGetAudioFeaturesRequest(ids=f"{SILENT_TRACK},{without},{key}")
    )
    assert [f.id for f in batch.audio_features] == [key]  # the silent demo track has none either


async def test_genres_are_the_demo_genres_and_page(catalog: Stub) -> None:
    everything = await catalog.ListGenres(catalog_pb2.ListGenresRequest())
    assert list(everything.genres) == sorted(demo.GENRES)
    first = await catalog.ListGenres(catalog_pb2.ListGenresRequest(page_size=3))
    rest = await catalog.ListGenres(catalog_pb2.ListGenresRequest(page_token=first.next_page_token))
    assert list(first.genres) + list(rest.genres) == list(everything.genres)
    assert rest.next_page_token == ""


# ---- JSON through Envoy -----------------------------------------------------------------------


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.fixture(scope="module")
def envoy(running_mesh: Mesh, demo_token: str) -> Iterator[httpx.Client]:
    """JSON through the mesh's Envoy, signed in as the demo listener (a failed login fails the tests)."""
    headers = {"authorization": f"Bearer {demo_token}"}
    with httpx.Client(base_url=running_mesh.envoy_url, timeout=10, headers=headers) as client:
        yield client


@pytest.mark.e2e
def test_json_album_and_its_track_pages(envoy: httpx.Client, running_mesh: Mesh) -> None:
    album = envoy.get(f"/v1/albums/{FIRST_ALBUM}").json()
    assert album["tracks"]["total"] == 5 and album["tracks"]["next"] == ""
    assert album["tracks"]["items"][0]["id"] == demo.DEMO_TRACK_ID
    page = envoy.get(f"/v1/albums/{FIRST_ALBUM}/tracks", params={"limit": 2}).json()
    assert [t["track_number"] for t in page["items"]] == [1, 2]
    assert page["next"].startswith(running_mesh.envoy_url)
    following = envoy.get(page["next"]).json()  # the absolute `next` URL works as given
    assert [t["track_number"] for t in following["items"]] == [3, 4]
    assert envoy.get(f"/v1/albums/{FIRST_ALBUM}/tracks", params={"limit": 51}).status_code == 400


@pytest.mark.e2e
def test_json_artists_albums_top_tracks_and_multi_gets(envoy: httpx.Client) -> None:
    artist = envoy.get(f"/v1/artists/{LOUD_VALLEYS}").json()
    assert artist["followers"]["total"] == 16_000 and artist["genres"] == ["rock"]
    albums = envoy.get(f"/v1/artists/{LOUD_VALLEYS}/albums", params={"include_groups": "album,single"}).json()
    assert [a["album_group"] for a in albums["items"]] == ["album", "album", "single"]
    top = envoy.get(f"/v1/artists/{LOUD_VALLEYS}/top-tracks", params={"market": "SE"}).json()
    assert len(top["tracks"]) == 10 and all(t["is_playable"] for t in top["tracks"])
    several = envoy.get("/v1/albums", params={"ids": f"{FIRST_ALBUM},{SECOND_ALBUM}"}).json()
    assert [a["id"] for a in several["albums"]] == [FIRST_ALBUM, SECOND_ALBUM]
    artists = envoy.get("/v1/artists", params={"ids": LOUD_VALLEYS}).json()
    assert artists["artists"][0]["name"] == "The Loud Valleys"
    missing = envoy.get(f"/v1/audio-features/{SILENT_TRACK}")
    assert missing.status_code == 404
    analysed = envoy.get(f"/v1/audio-features/{demo.DEMO_TRACK_ID}").json()  # ingested by tests/conftest.py
    assert analysed["tempo"] > 0 and 0 <= analysed["energy"] <= 1


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "key", "known"),
    [
        ("/v1/tracks", "tracks", [NEON_TRACK, demo.DEMO_TRACK_ID]),
        ("/v1/albums", "albums", [SECOND_ALBUM, FIRST_ALBUM]),
        ("/v1/artists", "artists", [LOUD_VALLEYS]),
        ("/v1/audio-features", "audio_features", [demo.DEMO_TRACK_ID]),
    ],
)
def test_json_multi_gets_put_null_in_place_of_unknown_ids(
    envoy: httpx.Client, path: str, key: str, known: list[str]
) -> None:
    """As Spotify: one entry per requested id, in order, null for an unknown one; each object is
    exactly what the single-item route returns for it."""
    unknown = ids.encode(uuid.uuid4())
    wanted = [known[0], unknown, *known[1:], known[0]]
    reply = envoy.get(path, params={"ids": ",".join(wanted)})
    assert reply.status_code == 200, reply.text
    items = reply.json()[key]
    assert len(items) == len(wanted)
    assert items[1] is None
    for wanted_id, item in zip(wanted, items, strict=True):
        if wanted_id == unknown:
            continue
        single = envoy.get(f"{path}/{wanted_id}")
        assert single.status_code == 200, single.text
        assert item == single.json()
    only_unknown = envoy.get(path, params={"ids": unknown}).json()
    assert only_unknown == {key: [None]}
    assert envoy.get(path, params={"ids": "not-an-id"}).status_code == 400
