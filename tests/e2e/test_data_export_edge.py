"""Data export through Envoy: a user with data in every service exports it; the archive holds what
each service's own tables hold for them (read back from the databases here), a README naming every
file, and nothing about anyone else; the download link is signed, expiring and audited."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from meshctl.mesh import Mesh
from meshkit import ids
from tests.e2e.deletion_world import Person, count, give_data_everywhere, person, query, signed_in
from tests.support import until

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]

# Each file of a per-user table and the table it must match row for row (by the user's id).
PER_USER_TABLES = {
    "library/saved_items.json": ("library.saved_items", "user_id"),
    "library/follows.json": ("library.playlist_followers", "user_id"),
    "library/collaborations.json": ("library.playlist_collaborators", "user_id"),
    "playback/player.json": ("playback.play_states", "user_id"),
    "playback/listening_history.json": ("playback.listening_history", "user_id"),
    "playback/counted_streams.json": ("playback.counted_streams", "user_id"),
    "playback/royalty_attributions.json": ("playback.royalty_attributions", "user_id"),
    "playback/offline_devices.json": ("playback.offline_devices", "user_id"),
    "playback/offline_licenses.json": ("playback.offline_licenses", "user_id"),
    "rec/listens.json": ("rec.listens", "user_id"),
    "rec/skips.json": ("rec.skips", "user_id"),
    "rec/discover_weekly.json": ("rec.discover_weekly", "user_id"),
    "catalog/artists_listened_to.json": ("catalog.artist_listeners", "user_id"),
    "catalog/takedowns.json": ("catalog.takedowns", "taken_down_by"),
    "catalog/ingest_jobs.json": ("catalog.ingest_jobs", "requested_by"),
    "auth/roles.json": ("auth.user_roles", "user_id"),
    "auth/managed_artists.json": ("auth.user_artists", "user_id"),
}


def _done(user: Person, export_id: str) -> dict[str, Any]:
    return until(
        lambda: (e := user.ok("GET", f"/api/account/data-export/{export_id}"))["state"] == "STATE_DONE" and e,
        "the export to be assembled",
        within=60,
        interval=0.25,
    )


def test_an_export_holds_what_every_service_stores_about_the_user_and_nothing_else(
    running_mesh: Mesh,
    envoy_client: Client,
    new_account: NewAccount,
    grant_premium: Callable[[str], str],
    admin_token: str,
) -> None:
    http, db = envoy_client(), running_mesh.database_url
    admin = signed_in(http, admin_token)
    subject, friend = (
        person(http, new_account, "Exporting Listener"),
        person(http, new_account, "Their Friend"),
    )
    give_data_everywhere(subject, friend, admin, grant_premium, db)
    friend.ok("POST", "/v1/me/playlists", json={"name": "Friend's own"})

    key = f"export-{uuid.uuid4().hex}"
    started = subject.ok("POST", "/api/account/data-export", json={"request_id": key})
    assert started["state"] in ("STATE_PENDING", "STATE_DONE") and not started["download_url"]
    retried = subject.ok("POST", "/api/account/data-export", json={"request_id": key})
    assert retried["id"] == started["id"]  # one export per request key
    done = _done(subject, started["id"])
    assert int(done["size_bytes"]) > 0 and done["download_url"]  # int64: a JSON string
    assert friend.call("GET", f"/api/account/data-export/{started['id']}").status_code == 404

    # The link works without a session, is bound to its signature, and is audited each time.
    link = urlsplit(done["download_url"])
    anonymous = envoy_client()
    reply = anonymous.get(f"{link.path}?{link.query}")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/zip"
    assert "attachment" in reply.headers["content-disposition"]
    tampered = link.query.replace("sig=", "sig=A")
    assert anonymous.get(f"{link.path}?{tampered}").status_code == 403
    other_export = link.path.replace(started["id"], subject.id)  # a path the signature does not cover
    assert anonymous.get(f"{other_export}?{link.query}").status_code == 403

    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    names = set(archive.namelist())
    readme = archive.read("README.md").decode()
    assert all(f"`{name}`" in readme for name in names - {"README.md"})
    files = {name: json.loads(archive.read(name)) for name in names - {"README.md"}}
    assert {name.split("/")[0] for name in files} == {"auth", "catalog", "library", "playback", "rec"}

    # Every file of a per-user table holds exactly that table's rows of the user.
    for name, (table, column) in PER_USER_TABLES.items():
        assert len(files[name]) == count(db, table, column, str(subject.uuid)), name
    (account,) = files["auth/account.json"]
    assert (account["id"], account["email"]) == (subject.id, subject.email)
    assert "password_hash" not in account
    owned = query(
        db, "SELECT name FROM library.playlists WHERE owner_id = CAST(:u AS uuid)", u=str(subject.uuid)
    )
    assert sorted(p["name"] for p in files["library/playlists.json"]) == sorted(n for (n,) in owned)
    mine = {p["id"] for p in files["library/playlists.json"]}
    assert all(item["playlist_id"] in mine for item in files["library/playlist_items.json"])
    assert [i["added_by_you"] for i in files["library/playlist_items.json"]] == [True, True]
    elsewhere = query(
        db,
        "SELECT count(*) FROM library.playlist_items WHERE added_by = CAST(:u AS uuid) "
        "AND playlist_id NOT IN (SELECT id FROM library.playlists WHERE owner_id = CAST(:u AS uuid))",
        u=str(subject.uuid),
    )[0][0]
    assert len(files["library/added_to_other_playlists.json"]) == elsewhere == 2
    assert files["catalog/takedowns.json"][0]["reason"] == "not ready"
    assert files["auth/sessions.json"], "the session that asked is open"
    actions = {entry["action"] for entry in files["auth/audit_log.json"]}
    assert {"user.register", "user.login", "user.data_export_requested"} <= actions

    # Nothing about anyone else: not the friend whose playlist they share, nor the admin.
    raw = b"".join(archive.read(name) for name in names)
    for someone in (friend, admin):
        assert someone.id.encode() not in raw and str(someone.uuid).encode() not in raw, someone.id
        assert someone.email.encode() not in raw or not someone.email

    logged = until(
        lambda: (
            {
                entry["action"]
                for entry in admin.ok(
                    "GET", "/api/admin/audit-logs", params={"actor_id": subject.id, "limit": 50}
                )["events"]
            }
            >= {"user.data_export_requested", "user.data_export_completed", "user.data_export_downloaded"}
        ),
        "the export's audit entries",
        within=10,
    )
    assert logged


def test_a_second_export_while_one_is_in_progress_is_a_409_naming_it(
    running_mesh: Mesh, envoy_client: Client, new_account: NewAccount
) -> None:
    http, db = envoy_client(), running_mesh.database_url
    subject = person(http, new_account, "Impatient Listener")
    # An export the worker will not claim for a day: in progress for as long as this test runs.
    ((export_uuid,),) = query(
        db,
        "INSERT INTO auth.data_exports (user_id, request_id, next_attempt_at) "
        "VALUES (CAST(:u AS uuid), 'first', now() + interval '1 day') RETURNING id",
        u=str(subject.uuid),
    )
    try:
        refused = subject.call("POST", "/api/account/data-export", json={"request_id": "second"})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["status"] == 409 and ids.encode(export_uuid) in error["message"], error
        assert count(db, "auth.data_exports", "user_id", str(subject.uuid)) == 1
        retried = subject.ok("POST", "/api/account/data-export", json={"request_id": "first"})
        assert (retried["id"], retried["state"]) == (ids.encode(export_uuid), "STATE_PENDING")
    finally:
        query(db, "DELETE FROM auth.data_exports WHERE id = :e", e=export_uuid)
