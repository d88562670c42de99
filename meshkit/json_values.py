"""Protobuf messages as google.protobuf.Value, printed the way Envoy's transcoder prints messages.

A few Spotify responses hold `null` in a list (the multi-gets put null where an id is unknown);
a repeated message field cannot, so those RPCs return `repeated google.protobuf.Value` built
here. The options mirror the transcoder's print_options in envoy/envoy.yaml.j2
(preserve_proto_field_names, always_print_primitive_fields), so an object looks the same
whichever RPC returned it.
"""

from __future__ import annotations

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def as_value(message: Message | None) -> struct_pb2.Value:
    """The message as a JSON object value, or JSON null for None."""
    if message is None:
        return NULL
    value = struct_pb2.Value()
    value.struct_value.update(
        json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )
    return value
