"""The edge's rate limits: whether a request may pass its route's category, for its subject.

ext_authz asks once per request of a limited route (the route names its category), with the
subject the category counts: the session's user, or the client address Envoy trusts. The
verdict carries the window's state for the `x-ratelimit-*` headers. When Redis cannot answer
within `timeout_s` the limiter fails open (allows, and says so in the log) or closed, as
configured; either way a request never waits on the limiter longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import KW_ONLY, dataclass, field

from redis.exceptions import RedisError

from auth_svc.limits import RateLimitTable
from auth_svc.ratelimit_store import Decision, SlidingWindow

log = logging.getLogger(__name__)

# Seconds an unreachable limiter failing closed tells clients to wait.
OUTAGE_RETRY_AFTER_S = 1
# At most one outage line per this many seconds, not one per request.
OUTAGE_LOG_INTERVAL_S = 10


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # The request counted against its category's window; None when nothing was counted (no such
    # category, no subject, or the limiter could not count).
    decision: Decision | None = None
    # How long a refused client should wait.
    retry_after_s: int | None = None
    # Refused because the limiter could not count and fails closed (a 503, not a 429).
    outage: bool = False


ALLOWED = Verdict(allowed=True)


@dataclass(eq=False)
class RateLimiter:
    table: RateLimitTable
    window: SlidingWindow
    _: KW_ONLY
    fail_open: bool
    # Longest a request waits for the limiter's Redis before the fail mode decides.
    timeout_s: float = 0.25
    _last_outage_log: float = field(init=False, default=0.0)

    async def check(self, category_name: str, *, user: str, address: str) -> Verdict:
        """Count one request against the named category's sliding window, for the subject its
        scope names: the signed-in `user`, or the client `address` ("" when there is none)."""
        category = self.table.categories.get(category_name)
        if category is None:
            log.warning("route names an unknown rate-limit category", extra={"category": category_name})
            return ALLOWED
        subject = user if category.scope == "user" else address
        if not subject:
            return ALLOWED
        try:
            async with asyncio.timeout(self.timeout_s):
                decision = await self.window.hit(category, subject)
        except (RedisError, TimeoutError) as exc:
            return self._outage(exc)
        return Verdict(
            allowed=decision.allowed,
            decision=decision,
            retry_after_s=None if decision.allowed else decision.reset_s,
        )

    def _outage(self, exc: Exception) -> Verdict:
        """Redis is unreachable or slow: let traffic through (default) or refuse it, and log it."""
        now = time.monotonic()
        if now - self._last_outage_log > OUTAGE_LOG_INTERVAL_S:
            self._last_outage_log = now
            log.error(
                "rate limiter cannot reach Redis: failing %s",
                "open (allowing requests)" if self.fail_open else "closed (refusing requests)",
                extra={"error": str(exc) or type(exc).__name__},
            )
        if self.fail_open:
            return ALLOWED
        return Verdict(allowed=False, retry_after_s=OUTAGE_RETRY_AFTER_S, outage=True)
