"""The shared server interceptor, exercised through a real grpc.aio server and channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import grpc
import kafka.errors
import pytest
import redis.exceptions
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit import context, ids
from meshkit.config import Settings
from meshkit.context import caller_from_metadata, caller_var, outgoing_metadata
from meshkit.errors import NotFound
from meshkit.metrics import REQUEST_DURATION, device_type_label, http_route
from meshkit.server import start_server

SERVICE = "test.v1.ProbeService"


async def _echo_context(request: bytes, ctx: aio.ServicerContext) -> bytes:
    caller = context.current_caller()
    user = ids.encode(caller.user_id) if caller.user_id else "-"
    return f"{context.current_request_id()}|{user}|{','.join(sorted(caller.roles))}".encode()


async def _not_found(request: bytes, ctx: aio.ServicerContext) -> bytes:
    raise NotFound("track 123 does not exist")


async def _crash(request: bytes, ctx: aio.ServicerContext) -> bytes:
    raise RuntimeError("secret internal detail")


async def _redis_down(request: bytes, ctx: aio.ServicerContext) -> bytes:
    raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")


async def _kafka_down(request: bytes, ctx: aio.ServicerContext) -> bytes:
    raise kafka.errors.NoBrokersAvailable()


async def _stream(request: bytes, ctx: aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"one"
    raise NotFound("ran out")


def _identity(x: bytes) -> bytes:
    return x


async def _setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> list[str]:
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo_context, _identity, _identity),
        "NotFound": grpc.unary_unary_rpc_method_handler(_not_found, _identity, _identity),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash, _identity, _identity),
        "RedisDown": grpc.unary_unary_rpc_method_handler(_redis_down, _identity, _identity),
        "KafkaDown": grpc.unary_unary_rpc_method_handler(_kafka_down, _identity, _identity),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream, _identity, _identity),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    return [SERVICE]


@pytest.fixture
async def channel() -> AsyncIterator[aio.Channel]:
    async with AsyncExitStack() as stack:
        running = await start_server("catalog_svc", _setup, Settings(listen_addr="127.0.0.1:0"), stack)
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            yield chan
        await running.stop(0)


def _method(channel: aio.Channel, name: str) -> aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/{SERVICE}/{name}", request_serializer=_identity, response_deserializer=_identity
    )


async def test_request_id_and_caller_come_from_metadata(channel: aio.Channel) -> None:
    user = ids.new_id()
    reply = await _method(channel, "Echo")(
        b"",
        metadata=(
            ("x-request-id", "req-42"),
            ("x-user-id", ids.encode(user)),
            ("x-user-roles", "user,premium"),
        ),
    )
    assert reply.decode() == f"req-42|{ids.encode(user)}|premium,user"


async def test_a_missing_request_id_is_generated_and_a_bad_user_id_means_anonymous(
    channel: aio.Channel,
) -> None:
    reply = await _method(channel, "Echo")(b"", metadata=(("x-user-id", "not-an-id"),))
    request_id, user, roles = reply.decode().split("|")
    assert len(request_id) == 32
    assert (user, roles) == ("-", "")


async def test_domain_errors_become_their_status_code_with_the_message(channel: aio.Channel) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await _method(channel, "NotFound")(b"")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "track 123 does not exist"


async def test_unexpected_errors_are_internal_without_details(channel: aio.Channel) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await _method(channel, "Crash")(b"", metadata=(("x-request-id", "req-crash"),))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (err.value.details() or "")
    assert "Traceback" not in (err.value.details() or "")
    assert "req-crash" in (err.value.details() or "")


async def test_a_dependency_outage_is_unavailable_not_internal(channel: aio.Channel) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await _method(channel, "RedisDown")(b"")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "6379" not in (err.value.details() or "")
    # Kafka's errors are recognised without the interceptor importing kafka-python itself.
    with pytest.raises(aio.AioRpcError) as err:
        await _method(channel, "KafkaDown")(b"")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_streaming_handlers_map_errors_after_partial_output(channel: aio.Channel) -> None:
    call = channel.unary_stream(
        f"/{SERVICE}/Stream", request_serializer=_identity, response_deserializer=_identity
    )(b"")
    received = []
    with pytest.raises(aio.AioRpcError) as err:
        async for item in call:
            received.append(item)
    assert received == [b"one"]
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_requests_are_measured_with_the_http_status_envoy_would_return(channel: aio.Channel) -> None:
    route = f"/{SERVICE}/NotFound"  # no google.api.http rule: POST on the gRPC path
    before = REQUEST_DURATION.labels("POST", route, "404")._sum.get()
    count = _bucket_count("POST", route, "404")
    with pytest.raises(aio.AioRpcError):
        await _method(channel, "NotFound")(b"")
    assert _bucket_count("POST", route, "404") == count + 1
    assert REQUEST_DURATION.labels("POST", route, "404")._sum.get() > before  # the call's duration


async def test_health_checks_are_measured_apart_from_requests(channel: aio.Channel) -> None:
    from prometheus_client import REGISTRY

    check = "/grpc.health.v1.Health/Check"
    labels = {"rpc": check, "status_code": "200"}
    before = REGISTRY.get_sample_value("control_call_duration_seconds_count", labels) or 0.0
    requests_before = _all_requests()
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert REGISTRY.get_sample_value("control_call_duration_seconds_count", labels) == before + 1
    assert _all_requests() == requests_before


def _all_requests() -> float:
    from prometheus_client import REGISTRY

    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "http_request_duration_seconds"
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


@pytest.mark.parametrize(
    ("rpc", "expected"),
    [
        ("/spotify.playback.v1.PlaybackService/GetStreamUrl", ("GET", "/api/playback/stream")),
        ("/spotify.catalog.v1.CatalogService/GetTrack", ("GET", "/v1/tracks/{id}")),
        ("/spotify.library.v1.LibraryService/CreatePlaylist", ("POST", "/v1/me/playlists")),
        (
            "/spotify.auth.v1.AuthService/ValidateSession",
            ("POST", "/spotify.auth.v1.AuthService/ValidateSession"),
        ),
        ("/no.such.Service/Method", ("POST", "/no.such.Service/Method")),
    ],
)
def test_the_route_label_is_the_rpcs_http_rule(rpc: str, expected: tuple[str, str]) -> None:
    import spotify.auth.v1.auth_pb2
    import spotify.catalog.v1.catalog_pb2
    import spotify.library.v1.library_pb2
    import spotify.playback.v1.playback_pb2  # noqa: F401  (their descriptors join the default pool)

    assert http_route(rpc) == expected


def test_device_types_outside_the_closed_set_are_other() -> None:
    assert [device_type_label(d) for d in ("Smartphone", "automobile", "toaster-9000", "")] == [
        "smartphone",
        "automobile",
        "other",
        "other",
    ]


def _bucket_count(method: str, route: str, status: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "http_request_duration_seconds_count", {"method": method, "route": route, "status_code": status}
    )
    return value or 0.0


async def test_health_and_reflection_are_served(channel: aio.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("sent", "kept"), [("SE", "SE"), ("se", "SE"), ("", ""), ("SWE", ""), ("1A", ""), ("ÅÄ", "")]
)
def test_the_callers_country_is_an_iso_code_or_nothing(sent: str, kept: str) -> None:
    metadata = [("x-user-id", ids.encode(ids.new_id())), ("x-user-country", sent)]
    caller = caller_from_metadata(metadata)
    assert caller.country == kept
    with_caller = caller_var.set(caller)
    try:
        forwarded = dict(outgoing_metadata())
    finally:
        caller_var.reset(with_caller)
    assert forwarded.get("x-user-country", "") == kept
