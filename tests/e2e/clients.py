"""Clients of the test mesh's Envoy that the shared fixtures do not make: native gRPC from a chosen
loopback address, and calls of any RPC by its path from the descriptor set.

grpcio cannot bind a client socket to a source address, yet Envoy's per-IP limits (login and
register) and the audit log key on it; a small TCP relay bound to the address stands in between.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import spotify
from google.protobuf import descriptor_pool, message, message_factory

from tests.conftest import fresh_loopback_address

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> dict[str, str]:
    """HTTP headers of a signed-in JSON client."""
    return {"authorization": f"Bearer {token}"}


def bearer_metadata(token: str) -> Metadata:
    """gRPC metadata of a signed-in SDK."""
    return (("authorization", f"Bearer {token}"),)


class _Relay:
    """Accepts on an ephemeral 127.0.0.1 port; each connection goes on to `target` from `address`."""

    def __init__(self, target: tuple[str, int], address: str) -> None:
        self.target, self.address = target, address
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.bind((self.address, 0))
            upstream.connect(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def relayed_from(target: str, address: str | None = None) -> Iterator[str]:
    """ "127.0.0.1:<port>": connections there reach `target` ("host:port") from `address` (a fresh
    127.x.y.z when None), as Envoy sees them."""
    host, _, port = target.rpartition(":")
    relay = _Relay((host, int(port)), address or fresh_loopback_address())
    try:
        yield f"127.0.0.1:{relay.port}"
    finally:
        relay.close()


@contextlib.contextmanager
def grpc_channel_from(target: str, address: str | None = None) -> Iterator[grpc.Channel]:
    """A gRPC channel to `target` ("host:port") whose connections come from `address` (a fresh
    127.x.y.z when None), as Envoy sees them."""
    with relayed_from(target, address) as relayed, grpc.insecure_channel(relayed) as channel:
        yield channel


def _load_contracts() -> descriptor_pool.DescriptorPool:
    """Import every generated `spotify.*` module, so the default pool knows every message."""
    for module in pkgutil.walk_packages(spotify.__path__, "spotify."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)
    return descriptor_pool.Default()


POOL = _load_contracts()


def message_class(full_name: str) -> type[message.Message]:
    """The generated class of a message type, by its full name (`spotify.auth.v1.GetMeRequest`)."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name.lstrip(".")))


def rpc_types(path: str) -> tuple[type[message.Message], type[message.Message], bool]:
    """(request class, response class, client-streaming) of the RPC at `/pkg.Service/Method`."""
    service, method = path.strip("/").split("/")
    found = POOL.FindServiceByName(service).methods_by_name[method]
    return (
        message_factory.GetMessageClass(found.input_type),
        message_factory.GetMessageClass(found.output_type),
        found.client_streaming,
    )


def call_rpc(
    channel: grpc.Channel,
    path: str,
    request: message.Message | Iterable[message.Message],
    metadata: Metadata = (),
    timeout: float = 10,
) -> Any:
    """Call any RPC by its path (unary or client-streaming) and return the response message."""
    request_type, response_type, streaming = rpc_types(path)
    serialize: Callable[[Any], bytes] = request_type.SerializeToString
    if streaming:
        stream = channel.stream_unary(path, serialize, response_type.FromString)
        return stream(iter(request), metadata=metadata, timeout=timeout)  # type: ignore[arg-type]
    unary = channel.unary_unary(path, serialize, response_type.FromString)
    return unary(request, metadata=metadata, timeout=timeout)
