"""Envoy's global rate limit service (`envoy.service.ratelimit.v3.RateLimitService`).

The response carries `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds
until a slot frees) for every limited route, and `retry-after` when refused; Envoy adds them to
the response (or to its 429). Envoy's own x-ratelimit headers stay off: they derive the window
from a unit enum and cannot say "15 minutes".
"""

from __future__ import annotations

from dataclasses import dataclass

from envoyapi.envoy.config.core.v3 import base_pb2
from envoyapi.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from grpc import aio

from auth_svc.ratelimit import RateLimiter
from auth_svc.ratelimit_store import Decision

_UNITS = {
    1: rls_pb2.RateLimitResponse.RateLimit.SECOND,
    60: rls_pb2.RateLimitResponse.RateLimit.MINUTE,
    3600: rls_pb2.RateLimitResponse.RateLimit.HOUR,
    86400: rls_pb2.RateLimitResponse.RateLimit.DAY,
}
OK = rls_pb2.RateLimitResponse.OK
OVER_LIMIT = rls_pb2.RateLimitResponse.OVER_LIMIT


def _header(key: str, value: str) -> base_pb2.HeaderValue:
    return base_pb2.HeaderValue(key=key, value=value)


def _status(decision: Decision | None) -> rls_pb2.RateLimitResponse.DescriptorStatus:
    if decision is None:
        return rls_pb2.RateLimitResponse.DescriptorStatus(code=OK)
    category = decision.category
    return rls_pb2.RateLimitResponse.DescriptorStatus(
        code=OK if decision.allowed else OVER_LIMIT,
        current_limit=rls_pb2.RateLimitResponse.RateLimit(
            name=f"{category.name}:{category.limit}/{category.window_s}s",
            requests_per_unit=category.limit,
            unit=_UNITS.get(category.window_s, rls_pb2.RateLimitResponse.RateLimit.UNKNOWN),
        ),
        limit_remaining=decision.remaining,
        duration_until_reset=Duration(seconds=decision.reset_s),
    )


@dataclass(frozen=True)
class RateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):
    limiter: RateLimiter

    async def ShouldRateLimit(
        self, request: rls_pb2.RateLimitRequest, context: aio.ServicerContext
    ) -> rls_pb2.RateLimitResponse:
        descriptors = [{entry.key: entry.value for entry in d.entries} for d in request.descriptors]
        verdict = await self.limiter.check(request.domain, descriptors, request.hits_addend or 1)
        response = rls_pb2.RateLimitResponse(
            overall_code=OK if verdict.allowed else OVER_LIMIT,
            statuses=[_status(decision) for decision in verdict.decisions],
        )
        if verdict.binding is not None:
            response.response_headers_to_add.extend(
                [
                    _header("x-ratelimit-limit", str(verdict.binding.limit)),
                    _header("x-ratelimit-remaining", str(verdict.binding.remaining)),
                    _header("x-ratelimit-reset", str(verdict.binding.reset_s)),
                ]
            )
        if verdict.retry_after_s is not None:
            response.response_headers_to_add.append(_header("retry-after", str(verdict.retry_after_s)))
        return response
