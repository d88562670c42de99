"""The event loop of every long-running process: uvloop's (libuv, in C) instead of asyncio's own.

On the request path most of a service's Python CPU is event-loop work (scheduling callbacks,
tasks, socket readiness) rather than its handlers (`python -m bench.edge_cost --profile`);
uvloop does that work in C. grpc.aio, aiohttp, redis-py and psycopg run on it unchanged.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on a uvloop event loop."""
    return uvloop.run(main)
