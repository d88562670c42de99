"""What only the mesh network may call is unreachable through Envoy, checked live: every internal
RPC of the registry (from the descriptor set), health and reflection, as native gRPC and as JSON,
at its path and at look-alikes of it; and a signed media URL, once changed, gets 403 and no audio.

Each probe carries a request that works when sent to the service itself (shown first), with the
admin's session, so only the edge can be what refuses it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import grpc
import httpx
import pytest
import sqlalchemy as sa
from envoyapi.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from google.protobuf import json_format, message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2
from spotify.common.v1 import common_pb2
from spotify.rec.v1 import rec_pb2

from devdata import demo
from meshctl.mesh import Mesh
from meshkit import ids, services
from tests.e2e.clients import bearer, bearer_metadata, call_rpc
from tests.e2e.role_table import internal_rpcs
from tests.e2e.walk import AUDIO_TRACKS

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
PROBE_ACTION = f"edge.probe.{secrets.token_hex(4)}"
HEALTH = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def _requests(admin_token: str) -> dict[str, message.Message]:
    """A valid request for every internal RPC."""
    check = external_auth_pb2.CheckRequest()
    check.attributes.request.http.CopyFrom(
        attribute_context_pb2.AttributeContext.HttpRequest(
            path="/spotify.auth.v1.AuthService/GetMe", headers={"authorization": f"Bearer {admin_token}"}
        )
    )
    return {
        "/spotify.auth.v1.AuthService/ValidateSession": auth_pb2.ValidateSessionRequest(token=admin_token),
        "/spotify.auth.v1.AuthService/RecordAuditEvent": auth_pb2.RecordAuditEventRequest(
            event=auth_pb2.AuditEvent(action=PROBE_ACTION, resource_type="probe", success=True)
        ),
        # A confirmation for a user nobody deleted: refused inside (NOT_FOUND) if it ever got there.
        "/spotify.auth.v1.AuthService/ConfirmUserDeletion": auth_pb2.ConfirmUserDeletionRequest(
            user_id=ids.encode(uuid.uuid4()), service="library_svc"
        ),
        "/spotify.catalog.v1.CatalogService/ListGenres": catalog_pb2.ListGenresRequest(),
        # Someone nobody knows: every part comes back empty.
        **{
            f"/spotify.{package}/ExportUserData": common_pb2.ExportUserDataRequest(
                user_id=ids.encode(uuid.uuid4())
            )
            for package in (
                "catalog.v1.CatalogService",
                "library.v1.LibraryService",
                "playback.v1.PlaybackService",
                "rec.v1.RecommendationService",
            )
        },
        "/spotify.catalog.v1.CatalogService/ListTrackAudioFiles": catalog_pb2.ListTrackAudioFilesRequest(
            track_id=demo.DEMO_TRACK_ID
        ),
        "/spotify.rec.v1.RecommendationService/GetIndexStatus": rec_pb2.GetIndexStatusRequest(),
        "/spotify.rec.v1.RecommendationService/ReloadIndexes": rec_pb2.ReloadIndexesRequest(),
        "/envoy.service.auth.v3.Authorization/Check": check,
    }


def _owner_port(mesh: Mesh, path: str) -> int:
    return mesh.layout.internal_ports[services.owner_of(path.strip("/").split("/")[0]).name]


def _audited(database_url: str) -> int:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM auth.audit_logs WHERE action = :a"), {"a": PROBE_ACTION}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _raw(
    channel: grpc.Channel, path: str, payload: bytes, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    """Send bytes to any path as a unary gRPC call; the status it ends with."""
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        call(payload, metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _look_alikes(path: str) -> Iterator[str]:
    """The same method spelled as a router or a gRPC server might read it alike."""
    service, method = path.strip("/").split("/")
    yield f"/{service}/{method}/"
    yield f"//{service}/{method}"
    yield f"/{service}//{method}"
    yield f"/{service}/./{method}"
    yield f"/{service}/x/../{method}"
    yield f"/{service}/{method[:-1]}%{ord(method[-1]):02X}"
    yield f"/{service}%2F{method}"
    yield f"/{service.lower()}/{method}"


@pytest.fixture(scope="module")
def admin_identity(running_mesh: Mesh, admin_token: str, envoy_client: Client) -> tuple[tuple[str, str], ...]:
    """The metadata Envoy would set for the admin: what an internal caller sends."""
    me = envoy_client().get("/v1/me", headers=bearer(admin_token)).json()
    return (("x-user-id", me["id"]), ("x-user-roles", "user,admin"), ("x-user-product", "free"))


def test_every_internal_rpc_is_named_here() -> None:
    assert set(_requests("t")) == set(internal_rpcs())
    # The ones the edge must never expose, by name, are among them.
    assert {
        "/spotify.auth.v1.AuthService/ValidateSession",
        "/spotify.auth.v1.AuthService/RecordAuditEvent",
        "/spotify.auth.v1.AuthService/ConfirmUserDeletion",
        "/spotify.catalog.v1.CatalogService/ListTrackAudioFiles",
        "/spotify.rec.v1.RecommendationService/ReloadIndexes",
        "/spotify.rec.v1.RecommendationService/GetIndexStatus",
    } <= set(internal_rpcs())


def test_internal_rpcs_answer_on_the_mesh_network(
    running_mesh: Mesh, admin_token: str, admin_identity: tuple[tuple[str, str], ...]
) -> None:
    """The control: each probe request, sent to its service directly, reaches the method."""
    for path, request in _requests(admin_token).items():
        with grpc.insecure_channel(f"127.0.0.1:{_owner_port(running_mesh, path)}") as channel:
            try:
                call_rpc(channel, path, request, admin_identity)
            except grpc.RpcError as err:
                # Reached, and refused for its own reason (e.g. no index built to reload).
                assert err.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE), (
                    path,
                    err,
                )
    assert _audited(running_mesh.database_url) == 1
    for name in ("auth_svc", "rec_svc"):
        with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.internal_ports[name]}") as channel:
            health = channel.unary_unary(
                HEALTH,
                health_pb2.HealthCheckRequest.SerializeToString,
                health_pb2.HealthCheckResponse.FromString,
            )
            assert (
                health(health_pb2.HealthCheckRequest(), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            )
            listed = channel.stream_stream(
                REFLECTION,
                reflection_pb2.ServerReflectionRequest.SerializeToString,
                reflection_pb2.ServerReflectionResponse.FromString,
            )
            answers = list(
                listed(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            )
            assert answers[0].list_services_response.service


def test_a_services_public_port_does_not_serve_its_internal_rpcs(
    running_mesh: Mesh, admin_token: str, admin_identity: tuple[tuple[str, str], ...]
) -> None:
    """The port Envoy uses (which NetworkPolicies open to Envoy alone) answers an internal RPC as
    an unknown method, so a policy per port is a policy per kind of RPC; Envoy's own calls
    (ext_authz, rate limit) are served there."""
    audited = _audited(running_mesh.database_url)
    edge_only = {f"/{name}/" for service in services.SERVICES for name in service.edge_grpc}
    for path, request in _requests(admin_token).items():
        owner = services.owner_of(path.strip("/").split("/")[0]).name
        with grpc.insecure_channel(f"127.0.0.1:{running_mesh.layout.ports[owner]}") as channel:
            code = _raw(channel, path, request.SerializeToString(), admin_identity)
        if any(path.startswith(prefix) for prefix in edge_only):
            assert code is not grpc.StatusCode.UNIMPLEMENTED, path
        else:
            assert code is grpc.StatusCode.UNIMPLEMENTED, path
    assert _audited(running_mesh.database_url) == audited  # RecordAuditEvent never ran


def test_internal_rpcs_are_unreachable_through_envoy(
    running_mesh: Mesh, admin_token: str, envoy_client: Client
) -> None:
    probes: dict[str, Any] = {
        **_requests(admin_token),
        HEALTH: health_pb2.HealthCheckRequest(),
        REFLECTION: reflection_pb2.ServerReflectionRequest(list_services=""),
    }
    admin = bearer_metadata(admin_token)
    http = envoy_client()
    reached = []
    audited = _audited(running_mesh.database_url)
    with grpc.insecure_channel(running_mesh.grpc_target) as channel:
        for path, request in probes.items():
            payload = request.SerializeToString()
            # At its own path: Envoy's own answer, as for a method that does not exist.
            assert _raw(channel, path, payload, admin) == grpc.StatusCode.UNIMPLEMENTED, path
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            for method in ("POST", "GET"):
                reply = http.request(
                    method, path, json=body if method == "POST" else None, headers=bearer(admin_token)
                )
                assert reply.status_code == 404, (method, path, reply.text)
                assert reply.json() == {"error": {"status": 404, "message": "Service not found"}}
            # Look-alike paths never run the method either (whoever refuses them).
            for alike in _look_alikes(path):
                code = _raw(channel, alike, payload, admin)
                reply = http.post(alike, json=body, headers=bearer(admin_token))
                if code is grpc.StatusCode.OK or reply.status_code < 400:
                    reached.append(f"{alike}: gRPC {code.name}, JSON {reply.status_code}")
                else:
                    assert set(reply.json()) == {"error"}, (alike, reply.text)
    assert not reached, reached
    assert _audited(running_mesh.database_url) == audited  # RecordAuditEvent never ran


@pytest.fixture(scope="module")
def stream_url(envoy_client: Client, demo_token: str) -> str:
    reply = envoy_client().get(
        "/api/playback/stream",
        params={"track_id": AUDIO_TRACKS[0], "quality": "low"},
        headers=bearer(demo_token),
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["url"])


def _tampered(url: str) -> Iterator[tuple[str, str]]:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))

    def with_query(**changes: str | None) -> str:
        changed = {k: v for k, v in {**query, **changes}.items() if v is not None}
        return urlunsplit(parts._replace(query=urlencode(changed)))

    sig = query["sig"]
    yield "signature", with_query(sig=("A" if sig[0] != "A" else "B") + sig[1:])
    yield "expiry", with_query(exp=str(int(query["exp"]) + 3600))
    yield "user", with_query(uid=ids.encode(uuid.uuid4()))
    yield "key id", with_query(kid="dev-2")
    yield "no signature", with_query(sig=None)
    yield "no expiry", with_query(exp=None)
    yield "quality", urlunsplit(parts._replace(path=parts.path.replace("_96kbps.", "_320kbps.")))
    yield "track", urlunsplit(parts._replace(path=parts.path.replace(AUDIO_TRACKS[0], AUDIO_TRACKS[1])))


def test_a_tampered_signed_url_is_403_with_no_audio(stream_url: str, envoy_client: Client) -> None:
    http = envoy_client()
    path = stream_url.removeprefix(str(http.base_url).rstrip("/"))
    good = http.get(path, headers={"range": "bytes=0-1023"})
    assert good.status_code == 206 and good.content.startswith(b"OggS"), good.status_code
    assert "_96kbps." in path
    for what, url in _tampered(path):
        assert url != path, what
        for headers in ({}, {"range": "bytes=0-1023"}):
            reply = http.get(url, headers=headers)
            assert reply.status_code == 403, (what, reply.status_code)
            assert reply.headers["content-type"].startswith("application/json"), what
            assert reply.json()["error"]["status"] == 403, what
            assert b"OggS" not in reply.content and len(reply.content) < 200, what
