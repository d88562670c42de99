"""The SDK's event reporter through Envoy: events recorded while the mesh is unreachable survive
in SQLite (an app restart included) and, once delivered, make exactly the streams they should."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2

from devdata import demo
from meshctl import datatier
from meshctl.mesh import Mesh
from meshkit import ids
from sdk.client import MeshClient
from sdk.events import EventReporter, Flushed
from tests.e2e.clients import relayed_from
from tests.sdk.conftest import counted_keys
from tests.support import until


@pytest.fixture
def listener(running_mesh: Mesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[MeshClient]:
    _, _, token = new_account("SDK Events")
    with (
        relayed_from(running_mesh.grpc_target) as relayed,
        MeshClient(f"http://{relayed}", token=token) as client,
    ):
        yield client


def test_events_recorded_offline_are_delivered_once_when_the_link_returns(
    listener: MeshClient, database_engine: sa.Engine, tmp_path: Path
) -> None:
    me = listener.auth.GetMe(auth_pb2.GetMeRequest())
    track = listener.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    store = tmp_path / "events.db"

    # Offline: nothing listens where this client points.
    with MeshClient(f"http://127.0.0.1:{datatier.free_port()}", token=listener.token, timeout_s=2) as offline:
        reporter = EventReporter(offline, store, device_id="car-1", device_type="automobile")
        below = reporter.start(me.id, track.id, track.duration_ms)
        below.progress(track.duration_ms // 4)  # below the counting threshold: never counts
        session = reporter.start(me.id, track.id, track.duration_ms)
        session.progress(track.duration_ms // 2 + 100)  # past half of a short track: counts
        session.complete()
        flushed = reporter.flush()
        assert (flushed.sent, flushed.pending) == (0, 5)
        reporter.close()

    # The app restarts with the link back: the same store, a live client.
    reporter = EventReporter(listener, store, device_id="car-1", device_type="automobile", batch_limit=2)
    assert reporter.pending() == 5
    flushed = reporter.flush()
    assert (flushed.sent, flushed.rejected, flushed.pending) == (5, 0, 0)
    # Only the session past the threshold counts (stored under the user's id and its key).
    expected = [f"{me.id}:{session.key}"]
    assert until(lambda: counted_keys(database_engine, me.id) == expected or None, "the session to count", 30)
    assert reporter.flush() == Flushed(0, 0, 0)
    reporter.close()


def test_the_reporter_refuses_what_the_server_would(listener: MeshClient, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_limit"):
        EventReporter(listener, tmp_path / "e.db", batch_limit=501)
    reporter = EventReporter(listener, tmp_path / "e.db")
    session = reporter.start("someone", demo.DEMO_TRACK_ID, 6000)
    with pytest.raises(ValueError, match="event must be one of"):
        reporter.record(session, "rewind", 0)
    reporter.close()


def history_rows(engine: sa.Engine, user_id: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT count(*) FROM playback.listening_history WHERE user_id = :u"),
                {"u": ids.decode(user_id)},
            ).scalar_one()
        )


def test_a_batch_sent_again_after_a_crash_counts_once(
    listener: MeshClient, database_engine: sa.Engine, tmp_path: Path
) -> None:
    me = listener.auth.GetMe(auth_pb2.GetMeRequest())
    track = listener.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    store, before_send = tmp_path / "events.db", tmp_path / "before-send.db"
    reporter = EventReporter(listener, store)
    session = reporter.start(me.id, track.id, track.duration_ms)
    session.progress(track.duration_ms // 2 + 100)
    reporter.close()
    shutil.copy(store, before_send)

    reporter = EventReporter(listener, store)
    assert reporter.flush().sent == 2
    reporter.close()
    # The device died after the mesh took the batch and before it recorded that: on restart its
    # database is as it was before the send, and the same events go again.
    shutil.copy(before_send, store)
    reporter = EventReporter(listener, store)
    assert reporter.pending() == 2 and reporter.flush().sent == 2
    # A later session, consumed after the resent batch (one user's events stay in order).
    marker = reporter.start(me.id, track.id, track.duration_ms)
    marker.progress(track.duration_ms // 2 + 100)
    assert reporter.flush().sent == 2
    reporter.close()

    both = sorted(f"{me.id}:{key}" for key in (session.key, marker.key))
    assert until(lambda: counted_keys(database_engine, me.id) == both or None, "both sessions to count", 30)
    assert history_rows(database_engine, me.id) == 2
