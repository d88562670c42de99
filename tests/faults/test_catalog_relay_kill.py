"""catalog_svc SIGKILLed after its outbox relay published catalog edits, before it deleted their rows.

The kill lands there provably: the broker's replies to the relay's produce requests are held (the
broker appended the events, the relay never hears so), the edits' events are read back from the
topic, and their outbox rows are still there. After the supervisor restarts catalog_svc, its relay
publishes every row again; rec applies each change exactly once (by event id) and the edits are
what catalog serves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from spotify.catalog.v1 import catalog_pb2

from meshkit import topics
from tests.faults.harness import FaultMesh, until
from tests.faults.proxy import Trap, kafka_api_key
from tests.faults.streams import demo_tracks

PRODUCE = 0
EDITS = 3
PENDING = "SELECT payload FROM catalog.outbox_events WHERE position(%s::bytea in payload) > 0"
APPLIED = "SELECT count(*) FROM rec.events_applied WHERE event_id = %s AND topic = %s"


def _published(fm: FaultMesh, marker: str) -> list[str]:
    """The event ids of the marked changes on catalog.changes.v1, as often as each was published."""
    found = []
    for record in fm.broker.records(topics.CATALOG_CHANGES.name):
        if marker.encode() in record.value:
            found.append(catalog_pb2.CatalogChangeEvent.FromString(record.value).event_id)
    return found


def _pending(fm: FaultMesh, marker: str) -> set[str]:
    return {
        catalog_pb2.CatalogChangeEvent.FromString(row[0]).event_id for row in fm.sql(PENDING, marker.encode())
    }


def test_catalog_relay_killed_after_publishing_before_deleting_its_rows(
    healthy_mesh: FaultMesh, login: Callable[[str, str], str]
) -> None:
    fm = healthy_mesh
    tracks = demo_tracks(fm, EDITS)
    admin = httpx.Client(
        base_url=fm.mesh.envoy_url,
        timeout=30,
        headers={"authorization": f"Bearer {login('admin@example.com', 'admin-password')}"},
    )
    originals = {t.id: admin.get(f"/v1/tracks/{t.id}").json()["name"] for t in tracks}
    marker = uuid.uuid4().hex[:10]
    renamed = {t.id: f"{originals[t.id]} ({marker})" for t in tracks}
    # Every produce of a marked change is held (retries after the relay's timeout too), so the
    # rows cannot be deleted however long the kill takes.
    produce = Trap(
        lambda frame: (
            kafka_api_key(frame) == PRODUCE
            and topics.CATALOG_CHANGES.name.encode() in frame
            and marker.encode() in frame
        ),
        hold="reply",
        once=False,
    )
    try:
        fm.broker.proxy.arm(produce)
        try:
            for track in tracks:
                edit = admin.patch(f"/api/catalog/tracks/{track.id}", json={"name": renamed[track.id]})
                assert edit.status_code == 200, edit.text
            produce.wait(30)
            on_topic = until(lambda: _published(fm, marker), "the relay's events on the topic", 15)
            pending = _pending(fm, marker)
            assert len(pending) == EDITS
            assert set(on_topic) <= pending, "a published event's row was already deleted"
            victim = fm.kill("catalog_svc")
            fm.wait_dead(victim)
        finally:
            fm.broker.proxy.release(produce)
        fm.wait_restarted(victim)

        until(lambda: not _pending(fm, marker), "the restarted relay to publish every row", 60)
        published = _published(fm, marker)
        assert set(published) == pending
        assert len(published) > EDITS, "nothing was published twice: the kill did not land"
        until(
            lambda: all(fm.scalar(APPLIED, e, topics.CATALOG_CHANGES.name) == 1 for e in pending),
            "rec to apply every change once",
            60,
        )
        until(fm.envoy_healthy, "Envoy to see catalog again", 60)
        for track in tracks:
            assert admin.get(f"/v1/tracks/{track.id}").json()["name"] == renamed[track.id]
    finally:
        until(lambda: fm.serving("catalog_svc"), "catalog_svc to serve", 60)
        for track_id, name in originals.items():
            restored = admin.patch(f"/api/catalog/tracks/{track_id}", json={"name": name})
            assert restored.status_code == 200, restored.text
        admin.close()
