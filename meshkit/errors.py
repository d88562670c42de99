"""Domain errors that the server interceptor turns into gRPC status codes.

Domain and store code raise these instead of touching gRPC, so business rules stay
testable without a server, and every service maps them the same way.
"""

from __future__ import annotations

import grpc


class DomainError(Exception):
    """An error a client caused or can act on; its message is shown to the client."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """Malformed input (HTTP 400)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    """The named resource does not exist or is not visible to the caller (HTTP 404)."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    """A create collided with an existing resource (HTTP 409)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the change (HTTP 409)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrency conflict the client may retry (HTTP 409)."""

    code = grpc.StatusCode.ABORTED


class Unauthenticated(DomainError):
    """No valid session (HTTP 401)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    """Authenticated, but not allowed (HTTP 403)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(DomainError):
    """A quota or size limit was hit (HTTP 429, or 413 for uploads at the edge)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    """A dependency is down; the client may retry later (HTTP 503)."""

    code = grpc.StatusCode.UNAVAILABLE


# How Envoy's transcoder (and the dashboards) see each status: the HTTP code.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,  # Envoy's Lua error filter answers 409 (a conflict)
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
