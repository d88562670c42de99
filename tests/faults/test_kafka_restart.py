"""The broker killed and started again: what the mesh guarantees across it.

The local broker (tansu) keeps everything in memory, so a restart loses its topics, offsets and
any message nobody had consumed yet (docs/architecture.md, decision 6, says what the production
broker keeps instead). What must hold anyway, and is checked here:
- while it is down, ReportPlaybackEvents answers UNAVAILABLE (503 in Spotify's shape over JSON)
  in bounded time, and the client retries later with the same idempotency keys;
- an outbox keeps the rows written meanwhile (a catalog edit) and publishes them after;
- producers and consumer groups reconnect on their own to the new broker (topics re-created);
- what was counted before is not counted again, and everything reported after (the retries
  included) is counted exactly once, downstream too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit import topics
from tests.faults.harness import SHAPED_503, FaultMesh, json_outcome, until
from tests.faults.streams import (
    REC_GROUP,
    Ledger,
    Listener,
    demo_tracks,
    end_offsets,
    new_listener,
    new_sessions,
    session_events,
)

# ReportPlaybackEvents must give up well before Envoy's 15 s route timeout.
REFUSED_WITHIN_S = 12.0


@pytest.fixture
def listener(healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]) -> Iterator[Listener]:
    found = new_listener(healthy_mesh, new_account)
    yield found
    found.client.close()


def test_broker_killed_and_restarted(
    healthy_mesh: FaultMesh, listener: Listener, login: Callable[[str, str], str]
) -> None:
    fm = healthy_mesh
    tracks = demo_tracks(fm, 3)
    ledger = Ledger.open(fm, listener, tracks)
    ledger.sessions = new_sessions(tracks, 4)
    assert listener.report(session_events(ledger.sessions)).status_code == 200
    ledger.settle()  # counted, and consumed by everyone: nothing is left only in the broker

    admin = httpx.Client(
        base_url=fm.mesh.envoy_url,
        timeout=30,
        headers={"authorization": f"Bearer {login('admin@example.com', 'admin-password')}"},
    )
    edited = tracks[0]
    original = admin.get(f"/v1/tracks/{edited.id}").json()["name"]
    fm.broker.kill()
    try:
        # Reporting fails fast and clearly, over JSON and gRPC.
        refused = new_sessions(tracks, 3)
        started = time.monotonic()
        reply = listener.report(session_events(refused))
        assert json_outcome(reply) == SHAPED_503, reply.text
        assert time.monotonic() - started < REFUSED_WITHIN_S
        with grpc.insecure_channel(fm.mesh.grpc_target) as channel:
            stub = playback_pb2_grpc.PlaybackServiceStub(channel)
            request = playback_pb2.ReportPlaybackEventsRequest(
                events=[
                    playback_pb2.ClientPlaybackEvent(**e)  # type: ignore[arg-type]
                    for e in session_events(refused)
                    if e["event"] == "start"
                ]
            )
            signed_in = (("authorization", listener.client.headers["authorization"]),)
            with pytest.raises(grpc.RpcError) as unavailable:
                stub.ReportPlaybackEvents(request, metadata=signed_in, timeout=REFUSED_WITHIN_S)
            assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        # A catalog edit still commits; its change event waits in the outbox.
        renamed = f"{original} ({uuid.uuid4().hex[:6]})"
        edit = admin.patch(f"/api/catalog/tracks/{edited.id}", json={"name": renamed})
        assert edit.status_code == 200, edit.text
        pending = fm.sql(
            "SELECT payload FROM catalog.outbox_events WHERE position(%s::bytea in payload) > 0",
            renamed.encode(),
        )
        assert len(pending) == 1
        change = catalog_pb2.CatalogChangeEvent.FromString(pending[0][0])
    finally:
        fm.broker.start()

    try:
        # The client retries the refused sessions with the same keys, and reports new ones.
        ledger.sessions.extend(refused)

        def retried() -> bool:
            return listener.report(session_events(refused)).status_code == 200

        until(retried, "the broker to take the retried events", 60, interval=1)
        later = new_sessions(tracks, 3)
        ledger.sessions.extend(later)
        assert listener.report(session_events(later)).status_code == 200
        assert ledger.settle(within=120) == ledger.expected()

        # The edit's change event went out after the restart and reached rec's live index.
        until(
            lambda: (
                fm.scalar(
                    "SELECT count(*) FROM catalog.outbox_events WHERE position(%s::bytea in payload) > 0",
                    renamed.encode(),
                )
                == 0
            ),
            "catalog's relay to publish the edit",
            60,
        )
        applied = "SELECT count(*) FROM rec.events_applied WHERE event_id = %s AND topic = %s"
        try:
            until(
                lambda: fm.scalar(applied, change.event_id, topics.CATALOG_CHANGES.name) == 1,
                "rec to apply it",
                60,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {where_the_change_is(fm, change.event_id)}") from None
        # Every topic is back as the registry declares it (never auto-created with the broker's default).
        assert {t.name: len(fm.broker.partitions(t.name)) for t in topics.ALL} == {
            t.name: t.partitions for t in topics.ALL
        }
    finally:
        admin.patch(f"/api/catalog/tracks/{edited.id}", json={"name": original})
        admin.close()


def where_the_change_is(fm: FaultMesh, event_id: str) -> str:
    """What a failure needs to tell a lost record from a consumer that stopped reading: where the
    broker shows the change, each partition's end as read, and rec's committed offsets."""
    topic = topics.CATALOG_CHANGES.name
    found = [
        (r.partition, r.offset)
        for r in fm.broker.records(topic)
        if catalog_pb2.CatalogChangeEvent.FromString(r.value).event_id == event_id
    ]
    return (
        f"the change on {topic} at (partition, offset) {found or 'nowhere'}; "
        f"ends {end_offsets(fm, topic)}; rec committed {fm.broker.committed(REC_GROUP, topic)}"
    )
