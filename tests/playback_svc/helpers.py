"""Helpers the playback tests share: polling with a deadline, identity metadata, SQL checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from meshkit import ids
from tests.support import until

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 30.0, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last value: {value!r})")
        await asyncio.sleep(interval)


def poll(check: Callable[[], T], *, within: float = 30.0, interval: float = 0.1) -> T:
    """``eventually`` for synchronous checks (tests that talk HTTP with a blocking client)."""
    return until(check, within=within, interval=interval)


def user_metadata(user_id: str, product: str = "premium", roles: str = "user") -> tuple[tuple[str, str], ...]:
    """What Envoy injects after auth (and internal callers send)."""
    return (("x-user-id", user_id), ("x-user-roles", roles), ("x-user-product", product))


def new_user_id() -> str:
    return ids.encode(uuid.uuid4())


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())
