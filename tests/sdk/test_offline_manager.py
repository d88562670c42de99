"""The SDK's offline manager through Envoy: a playlist downloaded with progress, played from the
store, refused once its 30 days are over (on the device's clock), and the service's limits as
errors an app can act on."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import av
import pytest
from spotify.library.v1 import library_pb2

from devdata import demo
from meshkit import ids
from sdk.client import MeshClient
from sdk.offline import OfflineError, OfflineManager

DAY = 86_400


def test_a_playlist_downloads_with_progress_plays_offline_and_expires_after_30_days(
    premium: tuple[MeshClient, str], tmp_path: Path
) -> None:
    client, user_id = premium
    tracks = [ids.encode(t) for t in demo.audio_order(2)]  # both have audio in the test mesh
    playlist = client.library.CreatePlaylist(library_pb2.CreatePlaylistRequest(name="Offline"))
    client.library.AddPlaylistItems(
        library_pb2.AddPlaylistItemsRequest(id=playlist.id, uris=[f"spotify:track:{t}" for t in tracks])
    )
    now = [time.time()]  # the device's clock, which the test moves on

    def clock() -> float:
        return now[0]

    manager = OfflineManager(
        str(tmp_path / "offline.db"), client, user_id=user_id, device_id="car-7", clock=clock
    )
    manager.register("Car", "automobile")
    progress: list[tuple[int, int]] = []
    assert manager.download_playlist(playlist.id, on_progress=lambda *p: progress.append(p)) == tracks
    assert progress == [(1, 2), (2, 2)]
    (stored,) = manager.playlists()
    assert stored.expires_at - stored.downloaded_at == 30 * DAY

    audio = b"".join(manager.play_offline(tracks[0]))
    with av.open(io.BytesIO(audio), mode="r", format="ogg") as container:
        assert sum(f.samples for f in container.decode(audio=0)) > 0

    now[0] += 29 * DAY  # still within its 30 days
    assert b"".join(manager.play_offline(tracks[1]))[:4] == b"OggS"
    now[0] += 2 * DAY
    with pytest.raises(OfflineError) as expired:
        b"".join(manager.play_offline(tracks[1]))
    assert expired.value.reason == "expired"
    manager.close()


def test_the_device_limit_is_an_offline_error(premium: tuple[MeshClient, str], tmp_path: Path) -> None:
    client, user_id = premium
    managers: list[OfflineManager] = []
    try:
        for n in range(5):
            manager = OfflineManager(str(tmp_path / f"{n}.db"), client, user_id=user_id, device_id=f"d-{n}")
            managers.append(manager)
            manager.register(f"Device {n}", "speaker")
        sixth = OfflineManager(
            str(tmp_path / "6.db"), client, user_id=user_id, device_id=f"d-{uuid.uuid4().hex[:6]}"
        )
        managers.append(sixth)
        with pytest.raises(OfflineError) as refused:
            sixth.register("One too many", "speaker")
        assert refused.value.reason == "device_limit" and "5" in refused.value.message
        with pytest.raises(OfflineError) as unknown:
            sixth.download_track(demo.DEMO_TRACK_ID)
        assert unknown.value.reason == "not_registered"
    finally:
        for manager in managers:
            manager.close()
