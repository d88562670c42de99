"""Play state (/v1/me/player...) on the in-process playback_svc: commands from one device, reads
from any, Spotify's shapes, retried commands applied once, recently played with cursor paging.
Tracks, albums and playlists are the mesh's own (catalog_svc, library_svc)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc import aio
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2, library_pb2_grpc
from spotify.playback.v1 import playback_pb2
from sqlalchemy import insert

from meshkit import ids
from playback_svc.models import ListeningHistory
from tests.playback_svc.conftest import PUBLIC_BASE_URL
from tests.playback_svc.data import ADMIN, Account, Album, CatalogWriter, seed_accounts
from tests.playback_svc.helpers import new_user_id, user_metadata


class Remote:
    """One user's player over gRPC, as their devices (or Envoy on their behalf) call it."""

    def __init__(self, playback, user: str | Account | None = None) -> None:
        self.stub = playback.stub
        if isinstance(user, Account):
            self.user, self.md = user.id, user.metadata
        else:
            self.user = user or new_user_id()
            self.md = user_metadata(self.user)

    async def state(self) -> playback_pb2.PlaybackState:
        return await self.stub.GetPlaybackState(playback_pb2.GetPlaybackStateRequest(), metadata=self.md)

    async def play(self, device_id: str = "", request_id: str = "", **body) -> None:
        request = playback_pb2.StartPlaybackRequest(
            device_id=device_id, body=playback_pb2.StartPlaybackBody(**body), request_id=request_id
        )
        await self.stub.StartPlayback(request, metadata=self.md)

    async def pause(self) -> None:
        await self.stub.PausePlayback(playback_pb2.PausePlaybackRequest(), metadata=self.md)

    async def next(self, request_id: str = "") -> None:
        await self.stub.SkipToNext(playback_pb2.SkipToNextRequest(request_id=request_id), metadata=self.md)

    async def previous(self) -> None:
        await self.stub.SkipToPrevious(playback_pb2.SkipToPreviousRequest(), metadata=self.md)

    async def seek(self, position_ms: int) -> None:
        await self.stub.SeekToPosition(
            playback_pb2.SeekToPositionRequest(position_ms=position_ms), metadata=self.md
        )

    async def repeat(self, mode: str) -> None:
        await self.stub.SetRepeatMode(playback_pb2.SetRepeatModeRequest(state=mode), metadata=self.md)

    async def shuffle(self, on: bool) -> None:
        await self.stub.SetShuffle(playback_pb2.SetShuffleRequest(state=on), metadata=self.md)

    async def current(self) -> str:
        return (await self.state()).item.id


def uris(tracks: list[str]) -> list[str]:
    return [f"spotify:track:{t}" for t in tracks]


@pytest.fixture
async def album(catalog_writer: CatalogWriter) -> Album:
    return await catalog_writer.album([200_000] * 4, names=[f"Queue {i}" for i in range(4)])


@pytest.fixture
def tracks(album: Album) -> list[str]:
    return album.tracks


@pytest.fixture(scope="session")
async def library(running_mesh) -> library_pb2_grpc.LibraryServiceStub:
    async with aio.insecure_channel(
        f"127.0.0.1:{running_mesh.layout.internal_ports['library_svc']}"
    ) as channel:
        yield library_pb2_grpc.LibraryServiceStub(channel)


async def test_nothing_playing_is_an_empty_state(playback) -> None:
    state = await Remote(playback).state()
    assert not state.HasField("item") and not state.HasField("device") and not state.is_playing


async def test_play_pause_and_read_from_another_device(playback, tracks) -> None:
    phone = Remote(playback)
    await phone.play(device_id="phone-1", uris=uris(tracks), position_ms=5_000)
    laptop = Remote(playback, phone.user)  # the same user on another device reads the same state
    state = await laptop.state()
    assert state.item.id == tracks[0] and state.item.name == "Queue 0"
    assert state.is_playing and state.currently_playing_type == "track"
    assert state.device.id == "phone-1" and state.device.is_active
    assert 5_000 <= state.progress_ms < 15_000
    assert state.repeat_state == "off" and not state.shuffle_state
    assert state.timestamp > 0
    await phone.pause()
    paused = await laptop.state()
    later = await laptop.state()
    assert not paused.is_playing
    assert paused.progress_ms == later.progress_ms >= 5_000  # a paused position does not move
    current = await playback.stub.GetCurrentlyPlaying(
        playback_pb2.GetCurrentlyPlayingRequest(), metadata=laptop.md
    )
    assert (
        current.item.id == tracks[0] and current.progress_ms == paused.progress_ms and not current.is_playing
    )
    await phone.play()  # resume with an empty body
    resumed = await laptop.state()
    assert resumed.is_playing and resumed.progress_ms >= paused.progress_ms


async def test_next_previous_seek_and_repeat(playback, tracks) -> None:
    remote = Remote(playback)
    await remote.play(uris=uris(tracks[:3]))
    await remote.next()
    assert await remote.current() == tracks[1]
    await remote.previous()  # within 3 s: the previous track
    assert await remote.current() == tracks[0]
    await remote.next()
    await remote.seek(60_000)
    await remote.previous()  # past 3 s: restart the current track
    state = await remote.state()
    assert state.item.id == tracks[1] and state.progress_ms < 3_000
    await remote.seek(250_000)  # past the end: the next track
    assert await remote.current() == tracks[2]
    await remote.next()  # the end of the queue without repeat: stop on the last track
    state = await remote.state()
    assert state.item.id == tracks[2] and not state.is_playing
    await remote.repeat("context")
    await remote.next()
    state = await remote.state()
    assert state.item.id == tracks[0] and state.repeat_state == "context"


async def test_shuffle_visits_every_track_once_and_off_restores_order(playback, catalog_writer) -> None:
    album = await catalog_writer.album([100_000] * 8)
    queue = album.tracks
    remote = Remote(playback)
    await remote.play(context_uri=f"spotify:album:{album.id}", offset=playback_pb2.PlaybackOffset(position=2))
    await remote.shuffle(True)
    seen = [await remote.current()]
    for _ in range(7):
        await remote.next()
        seen.append(await remote.current())
    assert seen[0] == queue[2]  # shuffle starts from the track that was playing
    assert sorted(seen) == sorted(queue)  # ... and plays every other track exactly once
    assert (await remote.state()).shuffle_state
    await remote.next()  # the end of the shuffled pass (repeat is off)
    assert not (await remote.state()).is_playing
    await remote.shuffle(False)
    here = await remote.current()
    await remote.next()
    expected = queue[queue.index(here) + 1] if here != queue[-1] else here
    assert await remote.current() == expected  # the album's own order again


async def test_album_and_playlist_contexts_start_at_the_offset(
    playback, album: Album, library, running_mesh
) -> None:
    tracks = album.tracks
    (owner,) = await seed_accounts(running_mesh.database_url, 1)
    remote = Remote(playback, owner)
    await remote.play(
        context_uri=f"spotify:album:{album.id}", offset=playback_pb2.PlaybackOffset(uri=uris(tracks)[2])
    )
    state = await remote.state()
    assert state.item.id == tracks[2]
    assert state.context.type == "album" and state.context.uri == f"spotify:album:{album.id}"
    assert state.context.href == f"{PUBLIC_BASE_URL}/v1/albums/{album.id}"
    await remote.next()
    assert await remote.current() == tracks[3]
    playlist = await _playlist(library, owner, [tracks[3], tracks[0]], public=True)
    await remote.play(
        context_uri=f"spotify:playlist:{playlist}", offset=playback_pb2.PlaybackOffset(position=1)
    )
    assert await remote.current() == tracks[0]
    # Another listener plays the public playlist as well.
    other = Remote(playback)
    await other.play(context_uri=f"spotify:playlist:{playlist}")
    assert await other.current() == tracks[3]


async def test_a_private_playlist_plays_for_its_owner_only(
    playback, album: Album, library, running_mesh
) -> None:
    owner, stranger = await seed_accounts(running_mesh.database_url, 2)
    private = await _playlist(library, owner, album.tracks[1:3], public=False)
    context = f"spotify:playlist:{private}"
    mine = Remote(playback, owner)
    await mine.play(context_uri=context)
    assert await mine.current() == album.tracks[1]
    theirs = Remote(playback, stranger)
    await theirs.play(uris=uris(album.tracks[:1]))
    assert await code_of(theirs.play(context_uri=context)) == grpc.StatusCode.NOT_FOUND
    state = await theirs.state()
    assert state.item.id == album.tracks[0] and not state.HasField("context"), "the refusal changed nothing"


async def _playlist(
    library: library_pb2_grpc.LibraryServiceStub, owner: Account, tracks: list[str], *, public: bool
) -> str:
    """A playlist of `owner`'s in the mesh's library_svc, holding `tracks` in order."""
    made = await library.CreatePlaylist(
        library_pb2.CreatePlaylistRequest(name="Playback context", public=public), metadata=owner.metadata
    )
    await library.AddPlaylistItems(
        library_pb2.AddPlaylistItemsRequest(id=made.id, uris=uris(tracks)), metadata=owner.metadata
    )
    return made.id


async def test_track_objects_are_cached_by_playback_not_asked_for_on_every_read(
    playback, catalog_writer: CatalogWriter
) -> None:
    """The player shows catalog's track objects from playback's cache: once catalog renames a
    track (UpdateTrack, as an admin), catalog answers the new name and playback, within its
    cache's minutes, still the one it fetched when the track started."""
    (track,) = (await catalog_writer.album([200_000], names=["Before"])).tracks
    remote = Remote(playback)
    await remote.play(uris=uris([track]))
    assert (await remote.state()).item.name == "Before"
    rename = catalog_pb2.UpdateTrackRequest(id=track, name="After")
    assert (await catalog_writer.catalog.UpdateTrack(rename, metadata=ADMIN)).name == "After"
    fresh = await catalog_writer.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track))
    assert fresh.name == "After"
    for _ in range(3):
        assert (await remote.state()).item.name == "Before"


async def test_a_retried_skip_skips_once(playback, tracks) -> None:
    remote = Remote(playback)
    await remote.play(uris=uris(tracks))
    key = uuid.uuid4().hex
    await remote.next(request_id=key)
    await remote.next(request_id=key)  # the client did not see the first answer and retries
    assert await remote.current() == tracks[1]
    await remote.next(request_id=uuid.uuid4().hex)
    assert await remote.current() == tracks[2]


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_bad_commands_change_nothing(playback, tracks) -> None:
    remote = Remote(playback)
    assert await code_of(remote.pause()) == grpc.StatusCode.NOT_FOUND  # nothing is playing
    await remote.play(uris=uris(tracks[:2]))
    before = await remote.state()
    assert await code_of(remote.repeat("sometimes")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(remote.seek(-1)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(remote.play(uris=["spotify:album:" + tracks[0]])) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = ids.encode(uuid.uuid4())
    assert await code_of(remote.play(uris=[f"spotify:track:{unknown}"])) == grpc.StatusCode.NOT_FOUND
    after = await remote.state()
    assert (after.item.id, after.repeat_state) == (before.item.id, before.repeat_state)
    anonymous = playback.stub.GetPlaybackState(playback_pb2.GetPlaybackStateRequest())
    assert await code_of(anonymous) == grpc.StatusCode.UNAUTHENTICATED


async def test_recently_played_pages_backwards_with_cursors_and_tokens(playback, catalog_writer, db) -> None:
    user = new_user_id()
    tracks = (await catalog_writer.album([180_000] * 5, names=[f"Played {i}" for i in range(5)])).tracks
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    async with db.begin() as conn:
        await conn.execute(
            insert(ListeningHistory),
            [
                {
                    "user_id": ids.decode(user),
                    "track_id": ids.decode(track),
                    "played_at": start + timedelta(minutes=i),
                    "ms_played": 30_000,
                    "context_uri": "spotify:album:" + tracks[0] if i == 4 else None,
                }
                for i, track in enumerate(tracks)
            ],
        )
    md = user_metadata(user)
    first = await playback.stub.ListRecentlyPlayed(
        playback_pb2.ListRecentlyPlayedRequest(limit=2), metadata=md
    )
    assert [i.track.id for i in first.items] == [tracks[4], tracks[3]]
    assert first.items[0].played_at == "2024-05-01T12:04:00.000Z"
    assert first.items[0].context.type == "album"
    assert first.total == 5 and first.limit == 2
    assert first.cursors.before == str(int((start + timedelta(minutes=3)).timestamp() * 1000))
    assert f"before={first.cursors.before}" in first.next
    second = await playback.stub.ListRecentlyPlayed(
        playback_pb2.ListRecentlyPlayedRequest(limit=2, before=int(first.cursors.before)), metadata=md
    )
    assert [i.track.id for i in second.items] == [tracks[2], tracks[1]]
    third = await playback.stub.ListRecentlyPlayed(
        playback_pb2.ListRecentlyPlayedRequest(page_size=2, page_token=second.next_page_token), metadata=md
    )
    assert [i.track.id for i in third.items] == [tracks[0]] and not third.next and not third.next_page_token
    newer = await playback.stub.ListRecentlyPlayed(
        playback_pb2.ListRecentlyPlayedRequest(limit=2, after=int(second.cursors.after)), metadata=md
    )
    assert [i.track.id for i in newer.items] == [tracks[4], tracks[3]]
    bad = playback.stub.ListRecentlyPlayed(playback_pb2.ListRecentlyPlayedRequest(limit=51), metadata=md)
    assert await code_of(bad) == grpc.StatusCode.INVALID_ARGUMENT
