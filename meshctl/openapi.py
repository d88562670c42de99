"""The OpenAPI 3.1 document of the JSON edge, generated from the contracts (gen/openapi.json).

Everything in it is read from the descriptor set (with source info, for the comments) and the
registry, so it cannot drift from what Envoy serves:

* one operation per `google.api.http` rule (additional bindings included) of every public gRPC
  service, with its path and query parameters and request body the way the transcoder maps them;
* schemas of the messages in the JSON Envoy prints (proto field names, int64 as strings, enums by
  name, every field without presence always printed, well-known types in their JSON forms);
* the error object every failure carries, and the statuses each route can answer: from its edge
  policy (a session or not), whether it writes, takes a body, or has a rate-limit category.

`make gen` writes it beside the stubs and `make check-gen` fails when it is stale; Envoy serves it
at `GET /openapi.json` without a session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from auth_svc import limits
from meshkit import services
from meshkit.services import EdgePolicy

FDP = descriptor_pb2.FieldDescriptorProto
OPENAPI_NAME = "openapi.json"
ERROR_SCHEMA = "Error"

# SourceCodeInfo path components (descriptor.proto field numbers).
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**32 - 1}
# The JSON printer writes 64-bit integers as strings; the parser takes a string or a number.
_INT64 = {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"}
_UINT64 = {"type": "string", "format": "int64", "pattern": r"^[0-9]+$"}
_NUMBER = {"type": "number"}

SCALARS: dict[int, dict[str, Any]] = {
    FDP.TYPE_DOUBLE: _NUMBER,
    FDP.TYPE_FLOAT: _NUMBER,
    FDP.TYPE_INT32: _INT32,
    FDP.TYPE_SINT32: _INT32,
    FDP.TYPE_SFIXED32: _INT32,
    FDP.TYPE_UINT32: _UINT32,
    FDP.TYPE_FIXED32: _UINT32,
    FDP.TYPE_INT64: _INT64,
    FDP.TYPE_SINT64: _INT64,
    FDP.TYPE_SFIXED64: _INT64,
    FDP.TYPE_UINT64: _UINT64,
    FDP.TYPE_FIXED64: _UINT64,
    FDP.TYPE_BOOL: {"type": "boolean"},
    FDP.TYPE_STRING: {"type": "string"},
    FDP.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

# Well-known types, in their JSON mapping (https://protobuf.dev/programming-guides/json/).
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": SCALARS[FDP.TYPE_BYTES],
    "google.protobuf.DoubleValue": _NUMBER,
    "google.protobuf.FloatValue": _NUMBER,
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
}
HTTP_BODY = "google.api.HttpBody"
# Anonymous RPCs that check credentials, and so answer 401 when they are wrong.
CREDENTIAL_RPCS = frozenset({"/spotify.auth.v1.AuthService/Login"})

# What each error status means on this edge (the Lua filter's mapping of gRPC codes and Envoy's
# own replies).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: malformed JSON, an invalid argument or an unknown enum value.",
    401: "No valid session: the bearer token or session cookie is missing, expired or revoked.",
    403: (
        "Forbidden: the caller's role or ownership does not allow it, or a foreign page's cookie "
        "write or sign-in."
    ),
    404: "Not found.",
    409: "Conflict: the resource's state does not allow it, or it already exists.",
    413: "Request body too large.",
    415: "Unsupported media type: send the body as application/json.",
    429: "Rate limited: retry after the `retry-after` header's seconds.",
    503: "Service unavailable: the service behind the edge is down or restarting; retry.",
    504: "Gateway timeout.",
}


@dataclass(frozen=True)
class Descriptors:
    """The descriptor set indexed by full name, with each element's leading comment."""

    messages: dict[str, descriptor_pb2.DescriptorProto]
    enums: dict[str, descriptor_pb2.EnumDescriptorProto]
    services: dict[str, descriptor_pb2.ServiceDescriptorProto]
    comments: dict[str, str]

    @classmethod
    def load(cls, fds: descriptor_pb2.FileDescriptorSet) -> Descriptors:
        """Index every file of the set."""
        index = cls({}, {}, {}, {})
        for file in fds.file:
            located = {
                tuple(loc.path): _clean(loc.leading_comments) for loc in file.source_code_info.location
            }
            prefix = f"{file.package}." if file.package else ""
            for i, message in enumerate(file.message_type):
                index._add_message(prefix + message.name, message, (_FILE_MESSAGE, i), located)
            for i, enum in enumerate(file.enum_type):
                index._add_enum(prefix + enum.name, enum, (_FILE_ENUM, i), located)
            for i, service in enumerate(file.service):
                name = prefix + service.name
                index.services[name] = service
                index._comment(name, (_FILE_SERVICE, i), located)
                for j, method in enumerate(service.method):
                    index._comment(f"{name}.{method.name}", (_FILE_SERVICE, i, _SERVICE_METHOD, j), located)
        return index

    def _comment(self, name: str, path: tuple[int, ...], located: dict[tuple[int, ...], str]) -> None:
        if located.get(path):
            self.comments[name] = located[path]

    def _add_message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[name] = message
        self._comment(name, path, located)
        for i, field in enumerate(message.field):
            self._comment(f"{name}.{field.name}", (*path, _MESSAGE_FIELD, i), located)
        for i, nested in enumerate(message.nested_type):
            self._add_message(f"{name}.{nested.name}", nested, (*path, _MESSAGE_NESTED, i), located)
        for i, enum in enumerate(message.enum_type):
            self._add_enum(f"{name}.{enum.name}", enum, (*path, _MESSAGE_ENUM, i), located)

    def _add_enum(
        self,
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[name] = enum
        self._comment(name, path, located)
        for i, value in enumerate(enum.value):
            self._comment(f"{name}.{value.name}", (*path, _ENUM_VALUE, i), located)


def _clean(comment: str) -> str:
    """A proto comment as a description: lint directives dropped, lines joined."""
    lines = [line.strip() for line in comment.strip().splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("buf:lint:"))


def _type_name(field: descriptor_pb2.FieldDescriptorProto) -> str:
    return field.type_name.lstrip(".")


class SchemaBuilder:
    """Component schemas for the messages and enums the operations reach, added as they are met."""

    def __init__(self, index: Descriptors) -> None:
        self.index = index
        self.components: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, Any]:
        """A reference to the schema of message or enum `name` (built on first use)."""
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages refer to themselves
            if name in self.index.enums:
                self.components[name] = self._enum(name)
            else:
                self.components[name] = self.message(name)
        return {"$ref": f"#/components/schemas/{name}"}

    def _enum(self, name: str) -> dict[str, Any]:
        enum = self.index.enums[name]
        schema: dict[str, Any] = {"type": "string", "enum": [value.name for value in enum.value]}
        values = [
            f"`{value.name}`: {self.index.comments[f'{name}.{value.name}']}"
            for value in enum.value
            if f"{name}.{value.name}" in self.index.comments
        ]
        description = " ".join(filter(None, [self.index.comments.get(name, ""), *values]))
        if description:
            schema["description"] = description
        return schema

    def field(self, field: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        """The schema of one field's JSON value."""
        if field.type == FDP.TYPE_MESSAGE:
            entry = self.index.messages.get(_type_name(field))
            if entry is not None and entry.options.map_entry:
                return {"type": "object", "additionalProperties": self.field(entry.field[1])}
            value = self.ref(_type_name(field))
        elif field.type == FDP.TYPE_ENUM:
            value = self.ref(_type_name(field))
        else:
            value = dict(SCALARS[field.type])
        if field.label == FDP.LABEL_REPEATED:
            return {"type": "array", "items": value}
        return value

    def message(
        self, name: str, *, skip: frozenset[str] = frozenset(), printed: bool = True
    ) -> dict[str, Any]:
        """The object schema of a message; `printed`: as the edge prints it (required fields listed)."""
        message = self.index.messages[name]
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.field:
            if field.name in skip:
                continue
            prop = self.field(field)
            comment = self.index.comments.get(f"{name}.{field.name}")
            if comment:
                # Siblings of $ref are allowed in 3.1; they describe this use of the type.
                prop = {**prop, "description": comment}
            if field.options.deprecated:
                prop = {**prop, "deprecated": True}
            properties[field.name] = prop
            if printed and _always_printed(field):
                required.append(field.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if self.index.comments.get(name):
            schema["description"] = self.index.comments[name]
        return schema


def _always_printed(field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Whether the printer writes the field even at its default (no presence: Envoy prints those)."""
    if field.label == FDP.LABEL_REPEATED:
        return True
    if field.HasField("oneof_index") or field.proto3_optional:
        return False
    return field.type != FDP.TYPE_MESSAGE


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of an RPC."""

    verb: str
    path: str
    body: str


def _bindings(rule: http_pb2.HttpRule) -> Iterator[Binding]:
    verb = rule.WhichOneof("pattern")
    if verb == "custom":
        yield Binding(rule.custom.kind.lower(), rule.custom.path, rule.body)
    elif verb:
        yield Binding(verb, getattr(rule, verb), rule.body)
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


_PATH_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(=[^}]*)?\}")


class DocumentBuilder:
    """The whole document: paths from the public services' HTTP rules, then the components used."""

    def __init__(self, index: Descriptors, table: limits.RateLimitTable) -> None:
        self.index = index
        self.table = table
        self.schemas = SchemaBuilder(index)
        self.paths: dict[str, dict[str, Any]] = {}
        self.operation_ids: set[str] = set()

    def build(self) -> dict[str, Any]:
        tags = []
        for service in services.SERVICES:
            for grpc_service in service.public_grpc:
                if grpc_service not in self.index.services:
                    raise ValueError(f"the descriptor set lacks {grpc_service}: run make gen")
                tags.append({"name": grpc_service, "description": self.index.comments.get(grpc_service, "")})
                for method in self.index.services[grpc_service].method:
                    self._method(grpc_service, method)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Spotify-style streaming API (JSON edge)",
                "version": "1",
                "description": (
                    "The JSON routes Envoy transcodes to the mesh's gRPC services. Field names are "
                    "the protobuf names; 64-bit integers are strings; every error is "
                    '{"error":{"status":N,"message":"..."}}. Generated from proto/ by `make gen`.'
                ),
            },
            "servers": [{"url": "/"}],
            "tags": tags,
            "paths": self.paths,
            "components": {
                "schemas": {ERROR_SCHEMA: _error_schema(), **dict(sorted(self.schemas.components.items()))},
                "responses": {
                    str(code): {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
                        },
                    }
                    for code, description in ERROR_DESCRIPTIONS.items()
                },
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "The login's access token.",
                    },
                    "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                },
            },
        }

    def _method(self, grpc_service: str, method: descriptor_pb2.MethodDescriptorProto) -> None:
        if not method.options.HasExtension(annotations_pb2.http):
            return
        rpc_path = f"/{grpc_service}/{method.name}"
        policy = services.edge_policy(rpc_path, True)
        rule = method.options.Extensions[annotations_pb2.http]
        for number, binding in enumerate(_bindings(rule)):
            operation_id = method.name if number == 0 else f"{method.name}{number + 1}"
            if operation_id in self.operation_ids:
                operation_id = f"{grpc_service.rsplit('.', 1)[-1]}_{operation_id}"
            self.operation_ids.add(operation_id)
            operation = self._operation(grpc_service, method, binding, policy, operation_id)
            path = _PATH_VARIABLE.sub(lambda m: "{" + m.group(1) + "}", binding.path)
            self.paths.setdefault(path, {})[binding.verb] = operation

    def _operation(
        self,
        grpc_service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        binding: Binding,
        policy: EdgePolicy,
        operation_id: str,
    ) -> dict[str, Any]:
        request_name = method.input_type.lstrip(".")
        request = self.index.messages[request_name]
        path_fields = [m.group(1) for m in _PATH_VARIABLE.finditer(binding.path)]
        fields = {field.name: field for field in request.field}
        parameters: list[dict[str, Any]] = []
        for name in path_fields:
            field = fields[name.split(".")[0]]
            parameters.append(self._parameter(request_name, field, "path", name=name))
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "tags": [grpc_service],
            "summary": f"{method.name} ({grpc_service.rsplit('.', 1)[-1]})",
            "x-grpc-method": f"/{grpc_service}/{method.name}",
        }
        description = self.index.comments.get(f"{grpc_service}.{method.name}")
        if description:
            operation["description"] = description
        if binding.body != "*":
            for field in request.field:
                if field.name in path_fields or field.name == binding.body:
                    continue
                if field.type == FDP.TYPE_MESSAGE and _type_name(field) not in WELL_KNOWN:
                    continue  # the transcoder takes nested fields as a.b=, none of ours are public
                parameters.append(self._parameter(request_name, field, "query"))
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            if binding.body == "*":
                schema = self.schemas.message(request_name, skip=frozenset(path_fields), printed=False)
                schema.pop("description", None)
            else:
                schema = self.schemas.field(fields[binding.body])
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        operation["responses"] = self._responses(f"/{grpc_service}/{method.name}", method, binding, policy)
        if policy is EdgePolicy.ANONYMOUS:
            operation["security"] = []
        else:
            operation["security"] = [{"bearer": []}, {"session": []}]
        return operation

    def _parameter(
        self, message: str, field: descriptor_pb2.FieldDescriptorProto, where: str, *, name: str = ""
    ) -> dict[str, Any]:
        parameter: dict[str, Any] = {
            "name": name or field.name,
            "in": where,
            "required": where == "path",
            "schema": self.schemas.field(field),
        }
        if field.label == FDP.LABEL_REPEATED:
            parameter["style"], parameter["explode"] = "form", True
        comment = self.index.comments.get(f"{message}.{field.name}")
        if comment:
            parameter["description"] = comment
        return parameter

    def _responses(
        self,
        rpc_path: str,
        method: descriptor_pb2.MethodDescriptorProto,
        binding: Binding,
        policy: EdgePolicy,
    ) -> dict[str, Any]:
        output = method.output_type.lstrip(".")
        if output == HTTP_BODY:
            ok: dict[str, Any] = {"description": "The raw body.", "content": {"*/*": {"schema": {}}}}
        else:
            ok = {
                "description": self.index.comments.get(output, "OK") or "OK",
                "content": {"application/json": {"schema": self.schemas.ref(output)}},
            }
        # 403 for every route: a role or ownership refusal, or a foreign page (sign-in included).
        codes = {400, 403, 404, 503, 504}
        if policy is not EdgePolicy.ANONYMOUS:
            codes.add(401)
        if rpc_path in CREDENTIAL_RPCS:
            codes.add(401)
        if not services.is_read_only(rpc_path):
            codes.add(409)
        if binding.body:
            codes |= {413, 415}
        if self.table.category_of(rpc_path) is not None:
            codes.add(429)
        responses: dict[str, Any] = {"200": ok}
        for code in sorted(codes):
            responses[str(code)] = {"$ref": f"#/components/responses/{code}"}
        return responses


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Spotify's error object: every failed JSON call answers it.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer", "description": "The HTTP status, repeated."},
                    "message": {"type": "string"},
                },
            }
        },
    }


def build(
    fds: descriptor_pb2.FileDescriptorSet, table: limits.RateLimitTable | None = None
) -> dict[str, Any]:
    """The OpenAPI document of every public JSON route in `fds` (which needs source info for comments)."""
    return DocumentBuilder(Descriptors.load(fds), table or limits.load(limits.DEFAULT_PATH)).build()


def write(fds: descriptor_pb2.FileDescriptorSet, path: Path) -> None:
    """Write the document as stable, diff-friendly JSON."""
    path.write_text(json.dumps(build(fds), indent=1, ensure_ascii=False) + "\n")
