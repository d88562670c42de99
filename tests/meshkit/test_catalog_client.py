"""meshkit.catalog_client against the real catalog_svc of the test mesh."""

from __future__ import annotations

import pytest
from spotify.catalog.v1.catalog_pb2_grpc import CatalogServiceStub

from devdata import demo
from meshctl import datatier
from meshctl.mesh import Mesh
from meshkit import ids
from meshkit.catalog_client import CatalogClient
from meshkit.channels import open_channel
from meshkit.errors import NotFound, Unavailable
from meshkit.ttlcache import TTLCache

UNKNOWN = ids.encode(demo.demo_uuid("track:nobody:0:0"))


def _demo_tracks(count: int) -> list[str]:
    return [ids.encode(t) for t in demo.audio_order(count)]


async def test_tracks_come_in_batches_and_unknown_ids_are_left_out(running_mesh: Mesh) -> None:
    keys = _demo_tracks(120)  # three BatchGetTracks of at most 50
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        client = CatalogClient(channel)
        found = await client.tracks([*keys, UNKNOWN, keys[0]])
    assert sorted(found) == sorted(keys)
    assert found[demo.DEMO_TRACK_ID].name
    assert found[demo.DEMO_TRACK_ID].artists[0].id == demo.DEMO_ARTIST_ID


async def test_found_tracks_are_cached_and_unknown_ones_only_when_asked(running_mesh: Mesh) -> None:
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        remembering = CatalogClient(channel, track_cache=TTLCache(100, 60), unknown_track_ttl_s=30)
        assert await remembering.track(UNKNOWN) is None
        await remembering.tracks([demo.DEMO_TRACK_ID])
        assert remembering.track_cache.get(demo.DEMO_TRACK_ID) is not None
        assert remembering.track_cache.get(UNKNOWN) is not None  # remembered as unknown
        assert await remembering.track(UNKNOWN) is None

        forgetting = CatalogClient(channel, track_cache=TTLCache(100, 60))
        assert await forgetting.track(UNKNOWN) is None
        assert forgetting.track_cache.get(UNKNOWN) is None


async def test_albums_artists_features_and_genres(running_mesh: Mesh) -> None:
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        client = CatalogClient(channel)
        track = await client.track(demo.DEMO_TRACK_ID)
        assert track is not None
        albums = await client.albums([track.album.id])
        artists = await client.artists([demo.DEMO_ARTIST_ID, UNKNOWN])
        features = await client.audio_features([demo.DEMO_TRACK_ID])
        genres = await client.genres()
    assert albums[track.album.id].name == track.album.name
    assert list(artists) == [demo.DEMO_ARTIST_ID]
    assert 0.0 <= features[demo.DEMO_TRACK_ID].energy <= 1.0  # the demo track's audio was ingested
    assert set(demo.GENRES) <= set(genres)


async def test_audio_files_are_sorted_and_an_unknown_track_is_not_found(running_mesh: Mesh) -> None:
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        client = CatalogClient(channel, audio_files_cache=TTLCache(10, 60))
        files = await client.audio_files(demo.DEMO_TRACK_ID)
        assert [f.bitrate_kbps for f in files] == sorted(f.bitrate_kbps for f in files)
        assert client.audio_files_cache.get(demo.DEMO_TRACK_ID) == files
        with pytest.raises(NotFound):
            await client.audio_files(UNKNOWN)


async def test_an_unknown_tracks_audio_files_are_not_asked_for_again_when_unknown_ids_are_remembered(
    running_mesh: Mesh,
) -> None:
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        client = CatalogClient(channel, track_cache=TTLCache(100, 60), unknown_track_ttl_s=30)
        with pytest.raises(NotFound):
            await client.audio_files(UNKNOWN)
    async with open_channel(f"127.0.0.1:{datatier.free_port()}", timeout_s=1) as nowhere:
        client.stub = CatalogServiceStub(nowhere)  # a call now would be Unavailable
        with pytest.raises(NotFound):
            await client.audio_files(UNKNOWN)
        assert await client.track(UNKNOWN) is None
        with pytest.raises(Unavailable):
            await client.audio_files(demo.DEMO_TRACK_ID)  # a known track is still asked for


async def test_a_catalog_that_does_not_answer_is_unavailable() -> None:
    async with open_channel(f"127.0.0.1:{datatier.free_port()}", timeout_s=1) as channel:
        client = CatalogClient(channel)
        with pytest.raises(Unavailable, match="BatchGetTracks"):
            await client.tracks([demo.DEMO_TRACK_ID])
        with pytest.raises(Unavailable, match="ListTrackAudioFiles"):
            await client.audio_files(demo.DEMO_TRACK_ID)


async def test_an_albums_tracks_and_an_artists_top_tracks(running_mesh: Mesh) -> None:
    async with open_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['catalog_svc']}") as channel:
        client = CatalogClient(channel)
        track = await client.track(demo.DEMO_TRACK_ID)
        assert track is not None
        page = await client.album_tracks(track.album.id, limit=50, offset=0)
        top = await client.artist_top_tracks(demo.DEMO_ARTIST_ID)
        with pytest.raises(NotFound):
            await client.album_tracks(UNKNOWN, limit=50, offset=0)
        with pytest.raises(NotFound):
            await client.artist_top_tracks(UNKNOWN)
    assert demo.DEMO_TRACK_ID in [t.id for t in page.items]
    assert page.total == len(page.items) == demo.TRACKS_PER_ALBUM
    assert top and all(demo.DEMO_ARTIST_ID in [a.id for a in t.artists] for t in top)
