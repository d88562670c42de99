"""Small helpers every suite shares: polling for a condition, and a client address of one's own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    check: Callable[[], T],
    what: str = "the condition",
    within: float = 30.0,
    interval: float = 0.05,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline.
    `sleep` waits between polls (a browser test waits inside Playwright, where its events arrive)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what} (last: {value!r})")
        sleep(interval)


def fresh_loopback_address() -> str:
    """A random 127.x.y.z (never 127.0.0.1): all of 127/8 reaches a loopback listener, so each
    client gets an address of its own (per-IP rate limits, the audit log's actor_ip)."""
    octets = secrets.token_bytes(3)
    return "127." + ".".join(str(1 + b % 254) for b in octets)
