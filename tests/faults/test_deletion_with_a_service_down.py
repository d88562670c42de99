"""An account deleted while library_svc is down: every other service erases its part and confirms,
library's part waits in its consumer group, and when library_svc is back it erases and confirms
too; then nothing names the user but the audit trail and the anonymised counts."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from meshkit.user_deletion import PARTIES
from tests.e2e.deletion_world import MAY_NAME_THE_USER, give_data_everywhere, person, rows_naming, signed_in
from tests.faults.harness import FaultMesh, until

DOWN = "library_svc"


def test_a_deletion_finishes_when_the_service_that_was_down_returns(
    healthy_mesh: FaultMesh,
    envoy_client: Callable[..., httpx.Client],
    new_account: Callable[..., tuple[str, str, str]],
    grant_premium: Callable[[str], str],
    admin_token: str,
) -> None:
    fm = healthy_mesh
    db = fm.mesh.database_url
    http = envoy_client()
    admin = signed_in(http, admin_token)
    subject, friend = person(http, new_account, "Leaving While Down"), person(http, new_account, "Friend")
    give_data_everywhere(subject, friend, admin, grant_premium, db)

    def status() -> dict:
        return admin.ok("GET", f"/api/admin/users/{subject.id}/deletion")

    with fm.held_down(DOWN):
        victim = fm.kill(DOWN)
        fm.wait_dead(victim)
        deleted = subject.ok("DELETE", "/api/account", json={"password": subject.password})
        assert deleted["pending_services"] == list(PARTIES)
        others = until(
            lambda: (s := status())["pending_services"] == [DOWN] and s,
            "every service but the stopped one to confirm",
            within=60,
        )
        assert not others["complete"]
        waiting = rows_naming(db, subject.uuid)
        library_left = {table for table in waiting if table.startswith("library.")}
        assert library_left, "library's part waits for library_svc"
        assert set(waiting) - library_left <= MAY_NAME_THE_USER, waiting

    fm.wait_restarted(victim)
    until(lambda: status()["complete"], f"{DOWN} to erase and confirm once back", within=90)
    assert set(rows_naming(db, subject.uuid)) <= MAY_NAME_THE_USER
    again = envoy_client().post(
        "/api/auth/register",
        json={"email": subject.email, "password": "another-password", "display_name": "Back"},
    )
    assert again.status_code == 200, again.text
