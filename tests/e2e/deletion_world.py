"""A user with data in every service, made through Envoy, and the database checks of its erasure.

Shared by the account-deletion test through the edge and the fault test that deletes while a
service is down. `rows_naming` scans every table of every service schema, all columns at once
(each row as text; binary columns as hex, where a protobuf payload's ids are ASCII).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from devdata import demo
from meshkit import ids
from meshkit.services import SCHEMAS
from sdk import offline_format
from tests.e2e.clients import bearer
from tests.support import until

# Where a deleted user's id may stay: the audit trail and the deletion's own record.
MAY_NAME_THE_USER = {"auth.audit_logs", "auth.user_deletions", "auth.deletion_confirmations"}
TRACKS = [ids.encode(t) for t in demo.audio_order(3)]


@dataclass
class Person:
    email: str
    password: str
    token: str
    id: str
    http: httpx.Client

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=bearer(self.token), **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        reply = self.call(method, path, **kwargs)
        assert reply.status_code == 200, f"{method} {path}: {reply.status_code} {reply.text}"
        return dict(reply.json()) if reply.content else {}

    @property
    def uuid(self) -> uuid.UUID:
        return ids.decode(self.id)


def signed_in(http: httpx.Client, token: str) -> Person:
    """Someone signed in already (the demo admin, say): their token is all there is."""
    return Person("", "", token, http.get("/v1/me", headers=bearer(token)).json()["id"], http)


def person(http: httpx.Client, new_account: Callable[..., tuple[str, str, str]], name: str) -> Person:
    email, password, token = new_account(name)
    me = http.get("/v1/me", headers=bearer(token)).json()
    return Person(email, password, token, me["id"], http)


def _engine(database_url: str) -> sa.Engine:
    return sa.create_engine(database_url, poolclass=sa.pool.NullPool)


def query(database_url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """`sql` in a transaction of its own, committed (a test's arranging writes go through here
    too); the rows it returns."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            found = conn.execute(sa.text(sql), params)
            return [tuple(row) for row in found] if found.returns_rows else []
    finally:
        engine.dispose()


def count(database_url: str, table: str, column: str, value: str) -> int:
    """Rows of `table` whose uuid `column` is `value`."""
    return int(
        query(database_url, f"SELECT count(*) FROM {table} WHERE {column} = CAST(:v AS uuid)", v=value)[0][0]
    )


def rows_naming(database_url: str, user_id: uuid.UUID) -> dict[str, int]:
    """Rows that hold the user's id in any form (UUID, base62, base62 in a binary payload), by table."""
    needles = {"id": str(user_id), "b62": ids.encode(user_id), "hex": ids.encode(user_id).encode().hex()}
    engine = _engine(database_url)
    found: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE'"
                ),
                {"schemas": list(SCHEMAS.values())},
            ).all()
            for schema, table in tables:
                count = conn.execute(
                    sa.text(
                        f'SELECT count(*) FROM "{schema}"."{table}" t WHERE strpos(t::text, :id) > 0 '
                        "OR strpos(t::text, :b62) > 0 OR strpos(t::text, :hex) > 0"
                    ),
                    needles,
                ).scalar_one()
                if count:
                    found[f"{schema}.{table}"] = count
    finally:
        engine.dispose()
    return found


def give_data_everywhere(
    subject: Person, friend: Person, admin: Person, grant_premium: Callable[[str], str], database_url: str
) -> dict[str, str]:
    """Data of `subject` in every service; `friend` owns a playlist the subject collaborates on.
    Returns the ids the checks need. Waits until the asynchronous parts (counting, rec) landed."""
    grant_premium(subject.token)
    artist = admin.ok("POST", "/api/catalog/artists", json={"name": f"Erasable {subject.id[:6]}"})["id"]
    admin.ok(
        "PUT",
        f"/api/admin/users/{subject.id}/roles",
        json={"roles": ["ROLE_USER", "ROLE_PREMIUM", "ROLE_ARTIST"], "artist_ids": [artist]},
    )
    album = subject.ok("POST", "/api/catalog/albums", json={"name": "Own album", "artist_ids": [artist]})[
        "id"
    ]
    own_track = subject.ok(
        "POST", "/api/catalog/tracks", json={"album_id": album, "name": "Own", "track_number": 1}
    )["id"]
    subject.ok("PUT", f"/api/catalog/tracks/{own_track}/takedown", json={"reason": "not ready"})

    # library: an own collaborative playlist, a friend's playlist they add to, follows and saves
    uris = [f"spotify:track:{t}" for t in TRACKS]
    mine = subject.ok(
        "POST", "/v1/me/playlists", json={"name": "Mine", "public": False, "collaborative": True}
    )["id"]
    subject.ok("POST", f"/v1/playlists/{mine}/items", json={"uris": uris[:2]})
    subject.ok("POST", f"/api/library/playlists/{mine}/collaborators", json={"user_id": friend.id})
    friends = friend.ok(
        "POST", "/v1/me/playlists", json={"name": "Friend's", "collaborative": True, "public": False}
    )["id"]
    friend.ok("POST", f"/api/library/playlists/{friends}/collaborators", json={"user_id": subject.id})
    friend.ok("POST", f"/v1/playlists/{friends}/items", json={"uris": uris[:1]})
    subject.ok("POST", f"/v1/playlists/{friends}/items", json={"uris": uris[1:3]})
    subject.ok("PUT", f"/v1/playlists/{friends}/followers", json={})
    subject.ok("PUT", "/v1/me/library", params={"uris": ",".join(uris)})

    # playback: player state, a counted stream, a skip, an offline device and license
    subject.ok("PUT", "/v1/me/player/play", json={"uris": uris})
    track = subject.ok("GET", f"/v1/tracks/{TRACKS[0]}")
    common = {"track_id": TRACKS[0], "device_type": "web", "track_duration_ms": track["duration_ms"]}
    counted_key, skipped_key = f"erase-{uuid.uuid4().hex}", f"erase-{uuid.uuid4().hex}"
    events = [
        {**common, "idempotency_key": counted_key, "event": "start"},
        {
            **common,
            "idempotency_key": counted_key,
            "event": "progress",
            "position_ms": min(31_000, track["duration_ms"]),
        },
        {**common, "idempotency_key": skipped_key, "track_id": TRACKS[1], "event": "start"},
        {
            **common,
            "idempotency_key": skipped_key,
            "track_id": TRACKS[1],
            "event": "skip",
            "position_ms": 2_000,
        },
    ]
    subject.ok("POST", "/api/playback/events", json={"events": events})
    key = offline_format.public_bytes(X25519PrivateKey.generate().public_key())
    subject.ok(
        "POST",
        "/api/playback/offline/devices",
        json={"device_id": "erase-phone", "public_key": base64.b64encode(key).decode()},
    )
    subject.ok(
        "POST",
        "/api/playback/offline/downloads",
        json={"device_id": "erase-phone", "track_id": TRACKS[0], "quality": "low"},
    )

    user = str(subject.uuid)

    def landed() -> bool:
        where = {
            "playback.counted_streams": "user_id",  # the stream counted
            "playback.royalty_attributions": "user_id",
            "rec.listens": "user_id",  # rec consumed the count
            "rec.skips": "user_id",  # and the skip
            "catalog.artist_listeners": "user_id",  # catalog counted a monthly listener
        }
        return all(count(database_url, table, column, user) > 0 for table, column in where.items())

    until(landed, "the stream counted, the skip and the listen everywhere", within=60, interval=0.25)
    return {"artist": artist, "own_track": own_track, "mine": mine, "friends": friends}
