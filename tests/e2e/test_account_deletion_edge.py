"""Account deletion through Envoy: a user with data in every service deletes their account; every
service erases or anonymises its part and confirms, counts survive, a replayed event changes
nothing, and the email registers again. An admin's deletion and the refusals are here too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from spotify.auth.v1 import auth_pb2
from spotify.playback.v1 import playback_pb2

from catalog_svc.settings import CatalogSettings
from meshctl.mesh import Mesh
from meshkit import ids, topics
from meshkit.services import SCHEMAS
from meshkit.user_deletion import PARTIES
from playback_svc.settings import PlaybackSettings
from rec_svc.settings import RecSettings
from tests import kafka_tail
from tests.e2e.clients import bearer
from tests.e2e.deletion_world import (
    MAY_NAME_THE_USER,
    count,
    give_data_everywhere,
    person,
    query,
    rows_naming,
    signed_in,
)
from tests.e2e.walk import recommendations_built
from tests.support import until

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]


def _kept_counts(database_url: str, artists: list[str], track: str) -> dict[str, int]:
    """What must not change when a listener goes: the streams, royalties and listeners counted."""
    found = {
        "counted streams": count(database_url, "playback.counted_streams", "track_id", track),
        "royalty rows": count(database_url, "playback.royalty_attributions", "track_id", track),
        "track's count": int(
            query(
                database_url,
                "SELECT stream_count FROM playback.track_stream_counts WHERE track_id = CAST(:t AS uuid)",
                t=track,
            )[0][0]
        ),
    }
    for artist in artists:
        found[f"listeners of {artist}"] = count(database_url, "catalog.artist_listeners", "artist_id", artist)
    return found


def _deletion_event(consumer: KafkaConsumer, user_id: str, within: float = 20) -> bytes:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                if auth_pb2.UserDeletedEvent.FromString(record.value).user_id == user_id:
                    return bytes(record.value)
    raise AssertionError(f"no {topics.USERS_DELETED.name} event for {user_id} within {within}s")


def _caught_up(bootstrap: str, topic: str, groups: list[str]) -> bool:
    """Every one of `groups` has committed to the end of `topic`."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic)]
        ends = reader.end_offsets(partitions)
    finally:
        reader.close()
    for group_id in groups:
        group = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
        try:
            if any((group.committed(p) or 0) < ends[p] for p in partitions):
                return False
        finally:
            group.close()
    return True


def _groups_caught_up(bootstrap: str) -> bool:
    """Every deletion consumer group has committed to the end of users.deleted.v1."""
    return _caught_up(bootstrap, topics.USERS_DELETED.name, [f"{s}-user-deletions" for s in PARTIES])


# The consumer groups that write per-user rows from each topic (the services' default settings).
_REC = RecSettings.model_fields["consumer_group"].default
WRITERS = {
    topics.PLAYBACK_EVENTS.name: [PlaybackSettings.model_fields["counter_group"].default, _REC],
    topics.STREAMS_COUNTED.name: [CatalogSettings.model_fields["stream_group"].default, _REC],
}


def _theirs(consumer: KafkaConsumer, user_id: str) -> dict[str, list[bytes]]:
    """The user's records the tail holds, by topic: all published already, so read until each
    topic has some and a poll brings nothing more."""
    found: dict[str, list[bytes]] = {topic: [] for topic in WRITERS}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=1000)
        if not batches and all(found.values()):
            break
        for record in (r for records in batches.values() for r in records):
            message = (
                playback_pb2.PlaybackEvent
                if record.topic == topics.PLAYBACK_EVENTS.name
                else playback_pb2.StreamCountedEvent
            )
            if message.FromString(record.value).user_id == user_id:
                found[record.topic].append(bytes(record.value))
    return found


def _late_copies(found: dict[str, list[bytes]]) -> list[tuple[str, bytes, bytes]]:
    """The same plays again as new ones (new event, session and stream ids): what a client's
    report sent just before the deletion would be, still on its way when the services erase."""
    late: list[tuple[str, bytes, bytes]] = []
    sessions: dict[str, str] = {}
    for value in found[topics.PLAYBACK_EVENTS.name]:
        event = playback_pb2.PlaybackEvent.FromString(value)
        event.event_id = str(uuid.uuid4())
        event.idempotency_key = sessions.setdefault(event.idempotency_key, f"late-{uuid.uuid4().hex}")
        late.append((topics.PLAYBACK_EVENTS.name, event.user_id.encode(), event.SerializeToString()))
    for value in found[topics.STREAMS_COUNTED.name]:
        counted = playback_pb2.StreamCountedEvent.FromString(value)
        counted.stream_id = str(uuid.uuid4())
        counted.idempotency_key = f"{counted.user_id}:late-{uuid.uuid4().hex}"
        late.append((topics.STREAMS_COUNTED.name, counted.track_id.encode(), counted.SerializeToString()))
    return late


def test_a_deleted_account_leaves_nothing_but_counts_and_the_audit_trail(
    running_mesh: Mesh,
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    admin_token: str,
) -> None:
    http = envoy_client()
    admin = signed_in(http, admin_token)
    subject, friend = (
        person(http, new_account, "Leaving Listener"),
        person(http, new_account, "Staying Friend"),
    )
    db = running_mesh.database_url
    plays = kafka_tail.tail(running_mesh.kafka_bootstrap, *WRITERS)
    try:
        made = give_data_everywhere(subject, friend, admin, grant_premium, db)
        theirs = _theirs(plays, subject.id)
    finally:
        plays.close()
    assert all(theirs.values()), {topic: len(found) for topic, found in theirs.items()}
    recommendations_built(running_mesh)
    subject.ok("GET", "/api/recs/discover-weekly")  # a stored mix
    assert (
        query(
            running_mesh.database_url,
            "SELECT count(*) FROM rec.discover_weekly WHERE user_id = CAST(:u AS uuid)",
            u=str(subject.uuid),
        )[0][0]
        == 1
    )
    user = str(subject.uuid)
    track = str(
        query(db, "SELECT track_id FROM playback.counted_streams WHERE user_id = CAST(:u AS uuid)", u=user)[
            0
        ][0]
    )
    artists = [
        str(a)
        for (a,) in query(
            db, "SELECT artist_id FROM catalog.artist_listeners WHERE user_id = CAST(:u AS uuid)", u=user
        )
    ]
    kept = _kept_counts(db, artists, track)
    login = {"email": subject.email, "password": subject.password}
    # From a client of its own: login sets a session cookie, which would ride on every later call.
    second_session = envoy_client().post("/api/auth/login", json=login).json()["access_token"]

    # The scan sees the user in every service's schema before the deletion.
    named = rows_naming(db, subject.uuid)
    assert {table.split(".")[0] for table in named} == set(SCHEMAS.values()), named

    # Refused: a wrong password (nothing changes), another user's deletion, anonymous.
    wrong = subject.call("DELETE", "/api/account", json={"password": "not-it"})
    assert (wrong.status_code, wrong.json()["error"]["status"]) == (403, 403)
    assert friend.call("DELETE", f"/api/admin/users/{subject.id}").status_code == 403
    assert friend.call("GET", f"/api/admin/users/{subject.id}/deletion").status_code == 403
    anonymous = envoy_client().request("DELETE", "/api/account", json={"password": subject.password})
    assert anonymous.status_code == 401
    assert subject.ok("GET", "/v1/me")["id"] == subject.id

    events = kafka_tail.tail(running_mesh.kafka_bootstrap, topics.USERS_DELETED.name)
    try:
        deleted = subject.ok("DELETE", "/api/account", json={"password": subject.password})
        event = _deletion_event(events, subject.id)
    finally:
        events.close()
    assert deleted["user_id"] == subject.id and deleted["requested_by"] == "self"
    assert [c["service"] for c in deleted["confirmations"]] == ["auth_svc"]
    # Every session ends at once, the one that asked and any other.
    for token in (subject.token, second_session):
        assert http.get("/v1/me", headers=bearer(token)).status_code == 401

    status = until(
        lambda: (s := admin.ok("GET", f"/api/admin/users/{subject.id}/deletion"))["complete"] and s,
        "every service's confirmation",
        within=60,
        interval=0.25,
    )
    assert sorted(c["service"] for c in status["confirmations"]) == sorted(["auth_svc", *PARTIES])
    assert status["pending_services"] == []

    left = rows_naming(running_mesh.database_url, subject.uuid)
    assert set(left) <= MAY_NAME_THE_USER, f"rows still naming the user: {left}"
    # The audit trail keeps what the user did and what was done to them, by id and nothing else:
    # no address of theirs, no details, no email (a failed login names the email it tried).
    audit = query(
        running_mesh.database_url,
        "SELECT action, actor_id = CAST(:u AS uuid), actor_ip, details, resource_id FROM auth.audit_logs "
        "WHERE actor_id = CAST(:u AS uuid) OR resource_id IN (:b, :e)",
        u=str(subject.uuid),
        b=subject.id,
        e=subject.email,
    )
    actions = {action for action, *_ in audit}
    assert {"user.register", "user.login", "user.delete", "catalog.take_down"} <= actions, actions
    assert all(ip is None for _a, by_them, ip, _d, _r in audit if by_them)
    assert all(
        details is None for action, _b, _ip, details, _r in audit if action != "user.deletion_confirmed"
    )
    assert all(resource != subject.email for *_, resource in audit)
    assert _kept_counts(db, artists, track) == kept

    # The friend's playlist keeps the tracks the user added, no longer saying who added them.
    items = friend.ok("GET", f"/v1/playlists/{made['friends']}/items")["items"]
    adders = [(item.get("added_by") or {}).get("id") for item in items]
    assert adders == [friend.id, None, None]
    assert friend.call("GET", f"/v1/playlists/{made['mine']}").status_code == 404  # theirs went

    # A replay of the event changes nothing.
    def state() -> tuple[object, ...]:
        confirmations = admin.ok("GET", f"/api/admin/users/{subject.id}/deletion")["confirmations"]
        counts = _kept_counts(db, artists, track)
        return rows_naming(running_mesh.database_url, subject.uuid), counts, confirmations

    before = state()
    producer = KafkaProducer(bootstrap_servers=running_mesh.kafka_bootstrap)
    try:
        producer.send(topics.USERS_DELETED.name, key=subject.id.encode(), value=event).get(timeout=10)
    finally:
        producer.close()
    until(
        lambda: _groups_caught_up(running_mesh.kafka_bootstrap),
        "the replay consumed by every service",
        within=60,
        interval=0.5,
    )
    assert state() == before

    # Plays that were on their way when the services erased write nothing about the user: each
    # service's tombstone of the user turns them away (the counter counts none of them).
    producer = KafkaProducer(bootstrap_servers=running_mesh.kafka_bootstrap)
    try:
        for topic, key, value in _late_copies(theirs):
            producer.send(topic, key=key, value=value).get(timeout=10)
    finally:
        producer.close()
    until(
        lambda: all(_caught_up(running_mesh.kafka_bootstrap, t, g) for t, g in WRITERS.items()),
        "the late plays consumed by every service that writes per-user rows",
        within=60,
        interval=0.5,
    )
    assert state() == before

    # The email is free again; deleting twice (as an admin) answers the same deletion.
    again = http.post(
        "/api/auth/register",
        json={"email": subject.email, "password": "a-new-password", "display_name": "Back"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] != subject.id
    repeat = admin.ok("DELETE", f"/api/admin/users/{subject.id}")
    assert (repeat["user_id"], repeat["requested_at"]) == (subject.id, deleted["requested_at"])


def test_an_admin_deletes_a_user(
    running_mesh: Mesh, envoy_client: Client, new_account: NewAccount, admin_token: str
) -> None:
    http = envoy_client()
    admin = signed_in(http, admin_token)
    subject = person(http, new_account, "Deleted By Admin")
    subject.ok("POST", "/v1/me/playlists", json={"name": "Soon gone"})
    assert admin.call("GET", f"/api/admin/users/{subject.id}/deletion").status_code == 404
    assert admin.call("DELETE", f"/api/admin/users/{admin.id}").status_code == 400  # not one's own, this way
    # An event auth knows no deletion of (republished by hand for the wrong id, say), on the same
    # partition just ahead of the real one: each service passes it over instead of retrying it
    # for ever, so the real deletion behind it still completes.
    bogus = auth_pb2.UserDeletedEvent(
        event_id=str(uuid.uuid4()), user_id=ids.encode(uuid.uuid4()), pseudonym=ids.encode(uuid.uuid4())
    )
    producer = KafkaProducer(bootstrap_servers=running_mesh.kafka_bootstrap)
    try:
        producer.send(
            topics.USERS_DELETED.name, key=subject.id.encode(), value=bogus.SerializeToString()
        ).get(timeout=10)
    finally:
        producer.close()
    deleted = admin.ok("DELETE", f"/api/admin/users/{subject.id}", params={"reason": "spam"})
    assert deleted["requested_by"] == admin.id
    assert http.get("/v1/me", headers=bearer(subject.token)).status_code == 401
    until(
        lambda: admin.ok("GET", f"/api/admin/users/{subject.id}/deletion")["complete"],
        "every service's confirmation",
        within=60,
        interval=0.25,
    )
    assert set(rows_naming(running_mesh.database_url, subject.uuid)) <= MAY_NAME_THE_USER
    logs = admin.ok("GET", "/api/admin/audit-logs", params={"action": "user.delete", "limit": 50})["events"]
    assert any(e["resource_id"] == subject.id and e["actor_id"] == admin.id for e in logs)
