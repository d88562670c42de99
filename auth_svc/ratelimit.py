"""Envoy's global rate limits: which limits a request counts against, and whether it may pass.

Envoy sends one descriptor per limit a route is in (a category and its subject: a user id or a
client address); every descriptor this table knows is counted in its sliding window, and one
refusal refuses the request. The verdict names the binding limit for the `x-ratelimit-*`
headers: a refusing one, else the one closest to refusing. When Redis is unreachable the limiter
fails open (allows, and says so in the log) or closed, as configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

from redis.exceptions import RedisError

from auth_svc.limits import CATEGORY_KEY, RateLimitTable
from auth_svc.ratelimit_store import Decision, SlidingWindow

log = logging.getLogger(__name__)

# Seconds an unreachable limiter failing closed tells clients to wait.
OUTAGE_RETRY_AFTER_S = 1
# At most one outage line per this many seconds, not one per request.
OUTAGE_LOG_INTERVAL_S = 10


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # One decision per descriptor, in order; None where no limit applies (unknown category, no subject).
    decisions: tuple[Decision | None, ...] = ()
    # The limit the response describes: a refusing one, else the one closest to refusing.
    binding: Decision | None = None
    # How long a refused client should wait.
    retry_after_s: int | None = None


@dataclass(eq=False)
class RateLimiter:
    table: RateLimitTable
    window: SlidingWindow
    _: KW_ONLY
    fail_open: bool
    _last_outage_log: float = field(init=False, default=0.0)

    async def check(self, domain: str, descriptors: Sequence[Mapping[str, str]], hits: int) -> Verdict:
        """Count `hits` requests against every limit the descriptors name."""
        if domain != self.table.domain:
            log.warning("rate limit request for unknown domain", extra={"domain": domain})
            return Verdict(allowed=True)
        counted: list[Decision | None] = []
        try:
            for entries in descriptors:
                category = self.table.categories.get(entries.get(CATEGORY_KEY, ""))
                subject = entries.get(category.subject_key, "") if category else ""
                if category is None or not subject:
                    counted.append(None)
                    continue
                counted.append(await self.window.hit(category, subject, hits))
        except RedisError as exc:
            return self._outage(exc)
        decisions = [d for d in counted if d is not None]
        over = [d for d in decisions if not d.allowed]
        binding = min(over or decisions, key=lambda d: (d.remaining, -d.reset_s)) if decisions else None
        return Verdict(
            allowed=not over,
            decisions=tuple(counted),
            binding=binding,
            retry_after_s=binding.reset_s if over and binding else None,
        )

    def _outage(self, exc: RedisError) -> Verdict:
        """Redis is unreachable: let traffic through (default) or refuse it, and say so in the log."""
        now = time.monotonic()
        if now - self._last_outage_log > OUTAGE_LOG_INTERVAL_S:
            self._last_outage_log = now
            log.error(
                "rate limiter cannot reach Redis: failing %s",
                "open (allowing requests)" if self.fail_open else "closed (refusing requests)",
                extra={"error": str(exc)},
            )
        if self.fail_open:
            return Verdict(allowed=True)
        return Verdict(allowed=False, retry_after_s=OUTAGE_RETRY_AFTER_S)
