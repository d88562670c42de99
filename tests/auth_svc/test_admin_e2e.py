"""Admin API, bans, roles and the audit log, through Envoy."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.struct_pb2 import Struct
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from devdata import demo
from meshctl.envoy_config import DEFAULT_DESCRIPTOR
from meshctl.mesh import Mesh

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
NewAccount = Callable[..., tuple[str, str, str]]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def admin_http_rules() -> list[tuple[str, str]]:
    """(HTTP method, path) of every AdminService RPC, from the contracts (so none is forgotten)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(DEFAULT_DESCRIPTOR.read_bytes())
    rules = []
    for file in fds.file:
        for service in file.service:
            if f"{file.package}.{service.name}" != "spotify.auth.v1.AdminService":
                continue
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                rules.append((verb.upper(), getattr(rule, verb).replace("{user_id}", demo.DEMO_USER_ID)))
    return rules


def test_non_admins_get_403_on_every_admin_route(
    envoy_client: Client, demo_token: str, free_token: str, artist_token: str
) -> None:
    rules = admin_http_rules()
    assert len(rules) == 7
    http = envoy_client()
    for token in (demo_token, free_token, artist_token):
        for verb, path in rules:
            body = None if verb == "GET" else {}
            reply = http.request(verb, path, json=body, headers=bearer(token))
            assert reply.status_code == 403, (verb, path, reply.text)
            assert reply.json() == {"error": {"status": 403, "message": "requires role admin"}}
    # Authorization comes before validation: a malformed request tells a non-admin nothing either.
    for verb, path in rules:
        malformed = path.replace(demo.DEMO_USER_ID, "not-an-id")
        params = {"limit": "-1", "since": "yesterday"}
        body = None if verb == "GET" else {}
        reply = http.request(verb, malformed, params=params, json=body, headers=bearer(demo_token))
        assert reply.status_code == 403, (verb, malformed, reply.text)
    for verb, path in rules:  # and without a session, 401 before anything else
        assert http.request(verb, path, json=None if verb == "GET" else {}).status_code == 401


def test_a_ban_takes_effect_on_the_very_next_request(
    envoy_client: Client, login: Callable[[str, str], str], new_account: NewAccount, admin_token: str
) -> None:
    email, password, token = new_account()
    other_session = login(email, password)
    http = envoy_client()
    user_id = http.get("/v1/me", headers=bearer(token)).json()["id"]

    banned = http.post(
        f"/api/admin/users/{user_id}/ban", json={"reason": "spam"}, headers=bearer(admin_token)
    )
    assert banned.status_code == 200, banned.text
    assert banned.json()["revoked_sessions"] == 2
    assert (banned.json()["user"]["banned"], banned.json()["user"]["ban_reason"]) == (True, "spam")
    for session in (token, other_session):
        assert http.get("/v1/me", headers=bearer(session)).status_code == 401
    refused = envoy_client().post("/api/auth/login", json={"email": email, "password": password})
    assert refused.status_code == 403
    assert refused.json() == {"error": {"status": 403, "message": "this account is banned"}}
    assert http.get(f"/v1/users/{user_id}", headers=bearer(admin_token)).status_code == 404

    unbanned = http.post(f"/api/admin/users/{user_id}/unban", json={}, headers=bearer(admin_token))
    assert unbanned.json()["user"]["banned"] is False
    assert http.get("/v1/me", headers=bearer(login(email, password))).status_code == 200

    events = http.get(
        "/api/admin/audit-logs", params={"resource_type": "user", "limit": 50}, headers=bearer(admin_token)
    ).json()["events"]
    mine = [(e["action"], e["success"]) for e in events if e["resource_id"] == user_id]
    assert ("user.ban", True) in mine and ("user.unban", True) in mine


def test_an_admin_cannot_ban_themselves_409(
    envoy_client: Client, admin_token: str, running_mesh: Mesh
) -> None:
    http = envoy_client()
    admin_id = http.get("/v1/me", headers=bearer(admin_token)).json()["id"]
    reply = http.post(f"/api/admin/users/{admin_id}/ban", json={}, headers=bearer(admin_token))
    # FAILED_PRECONDITION is a conflict with the resource's state: 409 (Envoy alone would say 400).
    assert reply.status_code == 409
    assert reply.json() == {"error": {"status": 409, "message": "an admin cannot ban themselves"}}
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            auth_pb2_grpc.AdminServiceStub(channel).BanUser(
                auth_pb2.BanUserRequest(user_id=admin_id),
                metadata=(("authorization", f"Bearer {admin_token}"),),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_role_changes_reach_live_sessions(
    envoy_client: Client, new_account: NewAccount, admin_token: str
) -> None:
    _, _, token = new_account()
    http = envoy_client()
    user_id = http.get("/v1/me", headers=bearer(token)).json()["id"]
    assert http.get("/api/admin/users", headers=bearer(token)).status_code == 403

    granted = http.put(
        f"/api/admin/users/{user_id}/roles", json={"roles": ["ROLE_ADMIN"]}, headers=bearer(admin_token)
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["user"]["roles"] == ["ROLE_USER", "ROLE_ADMIN"]
    assert http.get("/api/admin/users", headers=bearer(token)).status_code == 200  # same session

    artist = http.put(
        f"/api/admin/users/{user_id}/roles", json={"roles": ["ROLE_ARTIST"]}, headers=bearer(admin_token)
    )
    assert artist.status_code == 400  # an artist needs the artists they manage
    revoked = http.put(
        f"/api/admin/users/{user_id}/roles",
        json={"roles": ["ROLE_ARTIST"], "artist_ids": [demo.DEMO_ARTIST_ID]},
        headers=bearer(admin_token),
    )
    assert revoked.json()["user"]["roles"] == ["ROLE_USER", "ROLE_ARTIST"]
    assert revoked.json()["user"]["artist_ids"] == [demo.DEMO_ARTIST_ID]
    assert http.get("/api/admin/users", headers=bearer(token)).status_code == 403


def test_list_users_pages_and_filters(
    envoy_client: Client, admin_token: str, new_account: NewAccount
) -> None:
    tag = uuid.uuid4().hex[:6]
    for _ in range(3):
        new_account(display_name=f"Pager {tag}")
    http = envoy_client()
    first = http.get(
        "/api/admin/users", params={"query": tag, "limit": 2}, headers=bearer(admin_token)
    ).json()
    assert (first["total"], len(first["users"]), first["offset"]) == (3, 2, 0)
    assert first["next_page_token"]
    second = http.get(
        "/api/admin/users",
        params={"query": tag, "limit": 2, "page_token": first["next_page_token"]},
        headers=bearer(admin_token),
    ).json()
    assert (len(second["users"]), second["offset"], second["next_page_token"]) == (1, 2, "")
    ids = [u["id"] for u in first["users"] + second["users"]]
    assert len(set(ids)) == 3
    assert http.get("/api/admin/users", params={"limit": 500}, headers=bearer(admin_token)).status_code == 400


def test_duplicate_registration_is_409_and_creates_nothing(envoy_client: Client, admin_token: str) -> None:
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    http = envoy_client()
    first = http.post("/api/auth/register", json={"email": email, "password": "password-1"})
    assert first.status_code == 200
    again = http.post("/api/auth/register", json={"email": f" {email.upper()}", "password": "password-2"})
    assert again.status_code == 409
    assert again.json() == {
        "error": {"status": 409, "message": f"an account with email {email} already exists"}
    }

    bad_email = f"bad-{uuid.uuid4().hex[:8]}@example.com"
    for body, fragment in (
        ({"email": bad_email, "password": "short"}, "at least 8"),
        ({"email": "not-an-email", "password": "long-enough"}, "not a valid email"),
        ({"email": bad_email, "password": "long-enough", "country": "Sweden"}, "ISO 3166-1"),
    ):
        refused = envoy_client().post("/api/auth/register", json=body)
        assert refused.status_code == 400
        assert fragment in refused.json()["error"]["message"]

    def count(query: str) -> int:
        return http.get("/api/admin/users", params={"query": query}, headers=bearer(admin_token)).json()[
            "total"
        ]

    assert count(email) == 1
    assert count(bad_email) == 0


def test_failed_logins_are_audited_with_the_client_ip(
    envoy_client: Client, admin_token: str, loopback_address: str
) -> None:
    address = loopback_address
    email = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    attempt = envoy_client(address).post("/api/auth/login", json={"email": email, "password": "whatever-1"})
    assert attempt.status_code == 401
    reply = envoy_client().get(
        "/api/admin/audit-logs", params={"action": "user.login"}, headers=bearer(admin_token)
    )
    assert reply.status_code == 200
    events = [e for e in reply.json()["events"] if e["resource_id"] == email]
    assert len(events) == 1
    event = events[0]
    assert (event["success"], event["actor_ip"], event["actor_id"]) == (False, address, "")
    assert event["details"] == {"reason": "invalid_credentials"}
    assert event["request_id"]


def test_other_services_record_audit_events_through_the_rpc(running_mesh: Mesh, admin_token: str) -> None:
    details = Struct()
    details.update({"collaborator": demo.DEMO_USER_ID})
    resource = f"spotify:playlist:{uuid.uuid4().hex[:22]}"
    with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.internal_ports['auth_svc']}") as direct:
        stub = auth_pb2_grpc.AuthServiceStub(direct)
        stored = stub.RecordAuditEvent(
            auth_pb2.RecordAuditEventRequest(
                event=auth_pb2.AuditEvent(
                    action="playlist.collaborator.add",
                    actor_id=demo.DEMO_USER_ID,
                    actor_ip="10.1.2.3",
                    resource_type="playlist",
                    resource_id=resource,
                    details=details,
                    success=True,
                )
            ),
            timeout=5,
        ).event
        assert stored.id and stored.occurred_at.seconds > 0
        with pytest.raises(grpc.RpcError) as err:
            stub.RecordAuditEvent(
                auth_pb2.RecordAuditEventRequest(event=auth_pb2.AuditEvent(action="x", actor_ip="not-an-ip")),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with httpx.Client(base_url=running_mesh.envoy_url, headers=bearer(admin_token)) as http:
        events = http.get(
            "/api/admin/audit-logs",
            params={"action": "playlist.collaborator.add", "resource_type": "playlist"},
        ).json()["events"]
    found = [e for e in events if e["resource_id"] == resource]
    assert found and found[0]["details"] == {"collaborator": demo.DEMO_USER_ID}
    assert found[0]["actor_ip"] == "10.1.2.3"
