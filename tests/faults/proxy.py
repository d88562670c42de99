"""A loopback TCP proxy in front of the fault mesh's Redis or Kafka broker, whose connections a
test can hold at a chosen message: the network-level pause a fault test kills a process in.

A `Trap` names the message (a predicate over what a client sends) and what to hold:
- `hold="request"`: the message is never forwarded, and nothing after it on that connection
  (the server never sees it);
- `hold="reply"`: the message is forwarded, and the server's answer is kept from the client (the
  server did it; the client does not know).
A trap springs once, on the first matching message of any connection (or, with `once=False`, on
every matching connection until released); other connections pass through untouched. `release`
drops the held connections (both sides closed, nothing held is delivered), as a crash of the
client would.

Kafka requests are length-prefixed frames: each frame is matched whole. Redis requests are
matched per read, which holds one command or one pipeline of redis-py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal


@dataclass(eq=False)
class Trap:
    """Holds the first connection that sends a message `matches` accepts."""

    matches: Callable[[bytes], bool]
    hold: Literal["request", "reply"]
    # False: every matching connection is held until `release`, not only the first.
    once: bool = True
    # Set once the hold is in place: the request kept back, or the server's reply kept back.
    sprung: threading.Event = field(default_factory=threading.Event)
    matched: bytes = b""
    _connections: list[_Connection] = field(default_factory=list)

    def wait(self, within: float) -> None:
        if not self.sprung.wait(within):
            raise AssertionError(f"no matching message within {within}s")


class _Connection:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.up_held = asyncio.Event()
        self.down_held = asyncio.Event()
        self.down_trap: Trap | None = None
        self.closed = asyncio.Event()

    def close(self) -> None:
        self.closed.set()
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.close()


def kafka_frames(buffer: bytearray) -> list[bytes]:
    """Complete size-prefixed Kafka frames at the front of `buffer` (removed from it)."""
    frames = []
    while len(buffer) >= 4:
        (size,) = struct.unpack(">i", buffer[:4])
        if len(buffer) < 4 + size:
            break
        frames.append(bytes(buffer[: 4 + size]))
        del buffer[: 4 + size]
    return frames


def kafka_api_key(frame: bytes) -> int:
    """The request's API key (0 Produce, 8 OffsetCommit ...), after the 4-byte size."""
    (key,) = struct.unpack(">h", frame[4:6])
    return int(key)


class Proxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port` on a thread of its own."""

    def __init__(self, upstream_port: int, *, framing: Literal["kafka", "chunks"]) -> None:
        self.upstream_port = upstream_port
        self.framing = framing
        self.port = 0
        self._traps: list[Trap] = []
        self._connections: set[_Connection] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Proxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def close(self) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            for conn in list(self._connections):
                conn.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def arm(self, trap: Trap) -> Trap:
        self._loop.call_soon_threadsafe(self._traps.append, trap)
        return trap

    def release(self, trap: Trap) -> None:
        """Drop the trapped connection (or disarm a trap that never sprang)."""

        async def drop() -> None:
            if trap in self._traps:
                self._traps.remove(trap)
            for conn in trap._connections:
                conn.close()

        self._call(drop())

    def drop_all(self) -> None:
        """Close every open connection, as a restarted server would."""

        async def drop() -> None:
            for conn in list(self._connections):
                conn.close()

        self._call(drop())

    def _call(self, coro):  # type: ignore[no-untyped-def]
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        conn = _Connection(writer, up_writer)
        self._connections.add(conn)
        try:
            await asyncio.gather(self._up(conn, reader), self._down(conn, up_reader))
        finally:
            self._connections.discard(conn)
            conn.close()

    def _spring(self, conn: _Connection, message: bytes) -> Trap | None:
        for trap in self._traps:
            if trap.matches(message):
                if trap.once:
                    self._traps.remove(trap)
                trap.matched = message
                trap._connections.append(conn)
                return trap
        return None

    async def _up(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while not conn.closed.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                if conn.up_held.is_set():
                    continue  # a held connection's later requests never arrive either
                if self.framing == "kafka":
                    buffer += data
                    messages = kafka_frames(buffer)
                else:
                    messages = [data]
                for message in messages:
                    trap = self._spring(conn, message) if self._traps else None
                    if trap is not None and trap.hold == "request":
                        conn.up_held.set()
                        trap.sprung.set()
                        break
                    if trap is not None:
                        conn.down_trap = trap
                        conn.down_held.set()
                    conn.server.write(message)
                    await conn.server.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not conn.up_held.is_set() and not conn.down_held.is_set():
                conn.close()
            else:
                await conn.closed.wait()

    async def _down(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        try:
            while not conn.closed.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                if conn.down_held.is_set():
                    if conn.down_trap is not None:
                        conn.down_trap.sprung.set()
                    continue  # kept from the client, and dropped with the connection
                conn.client.write(data)
                await conn.client.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not conn.up_held.is_set() and not conn.down_held.is_set():
                conn.close()
            else:
                await conn.closed.wait()
