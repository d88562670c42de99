"""Per-request context: request id and caller identity, carried in contextvars.

Envoy authenticates every outside request and injects `x-user-id`, `x-user-roles` and
`x-user-product` after stripping any such header a client sent; internal callers set the
same metadata. Services trust these keys for that reason only.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from meshkit import ids
from meshkit.errors import InvalidArgument, PermissionDenied, Unauthenticated

REQUEST_ID_KEY = "x-request-id"
USER_ID_KEY = "x-user-id"
USER_ROLES_KEY = "x-user-roles"
USER_PRODUCT_KEY = "x-user-product"
USER_COUNTRY_KEY = "x-user-country"  # ISO 3166-1 alpha-2; absent when the account has none
IDEMPOTENCY_KEY = "idempotency-key"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an authenticated user, or nobody (`user_id is None`)."""

    user_id: uuid.UUID | None = None
    roles: frozenset[str] = frozenset()
    product: str = "free"
    country: str = ""

    @property
    def is_premium(self) -> bool:
        return self.product == "premium"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def require_user(self) -> uuid.UUID:
        """The caller's user id; UNAUTHENTICATED when there is none."""
        if self.user_id is None:
            raise Unauthenticated("this call needs a signed-in user")
        return self.user_id

    def require_role(self, *roles: str) -> uuid.UUID:
        """The caller's user id, provided it holds one of `roles`."""
        user_id = self.require_user()
        if not self.has_role(*roles):
            raise PermissionDenied(f"requires role {' or '.join(roles)}")
        return user_id


ANONYMOUS = Caller()

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
caller_var: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default=ANONYMOUS)
idempotency_key_var: contextvars.ContextVar[str] = contextvars.ContextVar("idempotency_key", default="")


def caller_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> Caller:
    """Build the Caller from invocation metadata; a malformed user id is treated as no user."""
    values = {key.lower(): value for key, value in metadata if isinstance(value, str)}
    raw_user = values.get(USER_ID_KEY, "")
    if not raw_user:
        return ANONYMOUS
    try:
        user_id = ids.decode(raw_user)
    except InvalidArgument:
        return ANONYMOUS
    roles = frozenset(r.strip() for r in values.get(USER_ROLES_KEY, "").split(",") if r.strip())
    product = values.get(USER_PRODUCT_KEY, "") or ("premium" if "premium" in roles else "free")
    country = values.get(USER_COUNTRY_KEY, "").strip().upper()
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        country = ""
    return Caller(user_id=user_id, roles=roles, product=product, country=country)


def current_caller() -> Caller:
    """The caller of the RPC being served."""
    return caller_var.get()


def current_request_id() -> str:
    """The request id of the RPC being served ('' outside a request)."""
    return request_id_var.get()


def current_idempotency_key(request_id: str = "") -> str:
    """The retry key of a write: the request's own `request_id` field, else the Idempotency-Key header."""
    return request_id or idempotency_key_var.get()


def outgoing_metadata() -> list[tuple[str, str]]:
    """Metadata that carries this request's id and caller to the next service."""
    metadata: list[tuple[str, str]] = []
    request_id = request_id_var.get()
    if request_id:
        metadata.append((REQUEST_ID_KEY, request_id))
    caller = caller_var.get()
    if caller.user_id is not None:
        metadata.append((USER_ID_KEY, ids.encode(caller.user_id)))
        metadata.append((USER_ROLES_KEY, ",".join(sorted(caller.roles))))
        metadata.append((USER_PRODUCT_KEY, caller.product))
        if caller.country:
            metadata.append((USER_COUNTRY_KEY, caller.country))
    return metadata
