"""The OpenAPI document of the JSON edge (gen/openapi.json), read against the contracts it comes from."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from auth_svc import limits
from meshctl.protos import GEN_DIR
from meshkit import services

DOCUMENT: dict[str, Any] = json.loads((GEN_DIR / "openapi.json").read_text())
OPERATIONS = {
    operation["operationId"]: (verb, path, operation)
    for path, verbs in DOCUMENT["paths"].items()
    for verb, operation in verbs.items()
}


def _http_rules() -> dict[str, list[tuple[str, str]]]:
    """{"/pkg.Service/Method": [(verb, path), ...]} from the descriptor set Envoy loads."""
    fds = descriptor_pb2.FileDescriptorSet.FromString((GEN_DIR / "descriptor.binpb").read_bytes())
    public = {name for service in services.SERVICES for name in service.public_grpc}
    rules: dict[str, list[tuple[str, str]]] = {}
    for file in fds.file:
        for service in file.service:
            name = f"{file.package}.{service.name}"
            if name not in public:
                continue
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                bindings = [rule, *rule.additional_bindings]
                rules[f"/{name}/{method.name}"] = [
                    (b.WhichOneof("pattern") or "", getattr(b, b.WhichOneof("pattern") or "get"))
                    for b in bindings
                ]
    return rules


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)


def test_every_http_rule_of_every_public_service_is_one_operation() -> None:
    rules = _http_rules()
    expected = sorted((verb, path, rpc) for rpc, bindings in rules.items() for verb, path in bindings)
    documented = sorted((verb, path, op["x-grpc-method"]) for verb, path, op in OPERATIONS.values())
    assert documented == expected
    assert len(documented) > 70


def test_proto_comments_become_descriptions() -> None:
    _, _, operation = OPERATIONS["GetTrack"]
    assert operation["description"].startswith("GetTrack")
    track = DOCUMENT["components"]["schemas"]["spotify.catalog.v1.Track"]
    assert track["description"]
    assert all("buf:lint" not in json.dumps(op) for op in OPERATIONS.values())


def test_only_register_login_and_signed_downloads_need_no_session() -> None:
    anonymous = {op_id for op_id, (_, _, op) in OPERATIONS.items() if op["security"] == []}
    assert anonymous == {"Register", "Login", "DownloadDataExport"}
    assert {rpc.rsplit("/", 1)[1] for rpc in services.ANONYMOUS_RPCS} == anonymous
    for op_id, (_, _, op) in OPERATIONS.items():
        assert ("401" in op["responses"]) == (op_id not in anonymous or op_id == "Login"), op_id


def test_429_is_declared_exactly_where_a_rate_limit_applies() -> None:
    table = limits.load()
    for op_id, (_, _, op) in OPERATIONS.items():
        limited = table.category_of(op["x-grpc-method"]) is not None
        assert ("429" in op["responses"]) == limited, op_id


def test_routes_with_a_body_declare_413_and_415_and_errors_share_one_schema() -> None:
    for op_id, (_, _, op) in OPERATIONS.items():
        assert ("413" in op["responses"] and "415" in op["responses"]) == ("requestBody" in op), op_id
        assert "500" not in op["responses"], op_id
    error = DOCUMENT["components"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(
    "schema,field,expected",
    [
        # The JSON names Envoy prints are the proto names; 64-bit integers are strings.
        ("spotify.catalog.v1.Track", "duration_ms", {"type": "integer", "format": "int32"}),
        ("spotify.common.v1.Followers", "total", {"type": "integer"}),
        ("spotify.playback.v1.DailyStreamRow", "streams", {"type": "string", "format": "int64"}),
        ("spotify.library.v1.PlaylistItemPage", "next_page_token", {"type": "string"}),
    ],
)
def test_fields_are_typed_as_the_edge_prints_them(schema: str, field: str, expected: dict[str, str]) -> None:
    prop = DOCUMENT["components"]["schemas"][schema]["properties"][field]
    assert expected.items() <= prop.items()


def test_enums_are_their_names_and_deprecated_names_are_marked() -> None:
    role = DOCUMENT["components"]["schemas"]["spotify.auth.v1.Role"]
    assert role["type"] == "string" and "ROLE_ADMIN" in role["enum"]
    playlist = DOCUMENT["components"]["schemas"]["spotify.library.v1.Playlist"]["properties"]
    assert playlist["tracks"]["deprecated"] is True
    assert "deprecated" not in playlist["items"]
