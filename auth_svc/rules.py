"""auth's rules that need no I/O: what an email, a password, a name, a country, a product, a role
set and an audit event may be, and what the audit log calls each action.

Every check raises InvalidArgument before anything is stored, so bad input never reaches the
database (where a CHECK constraint would turn it into a 500).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from auth_svc.models import ROLES
from auth_svc.passwords import MAX_BYTES
from meshkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied

ADMIN = "admin"
PRODUCTS = ("free", "premium")
MAX_DISPLAY_NAME = 100
MAX_EMAIL = 320
# Deliberately loose (one @, a dot in the domain, no spaces): the real check is a confirmation
# mail, which this backend does not send.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

MIN_PASSWORD = 8
# Longer than bcrypt reads: refused, instead of silently ignoring the rest of a passphrase.
MAX_PASSWORD_BYTES = MAX_BYTES

# Audit actions are named `<resource>.<verb>`; these are the ones auth_svc records itself.
# Details never hold secrets (no passwords, no tokens).
LOGIN = "user.login"
LOGOUT = "user.logout"
LOGOUT_EVERYWHERE = "user.logout_everywhere"
REGISTER = "user.register"
PASSWORD_CHANGE = "user.password_change"
EMAIL_CHANGE = "user.email_change"
SUBSCRIPTION_DOWNGRADE = "subscription.downgrade"
BAN = "user.ban"
UNBAN = "user.unban"
ROLES_SET = "user.roles_set"
ACCOUNT_DELETE = "user.delete"
DELETION_CONFIRMED = "user.deletion_confirmed"
DATA_EXPORT_REQUESTED = "user.data_export_requested"
DATA_EXPORT_COMPLETED = "user.data_export_completed"
DATA_EXPORT_DOWNLOADED = "user.data_export_downloaded"

# What the audit_logs columns hold.
MAX_ACTION = 100
MAX_RESOURCE_TYPE = 50
MAX_REQUEST_ID = 128


def normalise_email(email: str) -> str:
    """Emails are compared and stored stripped and lower-cased (unique on lower(email))."""
    return email.strip().lower()


def check_email(email: str, *, field: str = "email") -> str:
    """The normalised email, or InvalidArgument."""
    normalised = normalise_email(email)
    if not normalised:
        raise InvalidArgument(f"{field} is required")
    if len(normalised) > MAX_EMAIL or not _EMAIL.match(normalised):
        raise InvalidArgument(f"{field} is not a valid email address")
    return normalised


def check_new_password(password: str, *, field: str = "password") -> None:
    """Reject a password that may not be set: shorter than 8 characters or over 72 bytes."""
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument(f"{field} must be at least {MIN_PASSWORD} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidArgument(f"{field} must be at most {MAX_PASSWORD_BYTES} bytes")


def check_display_name(name: str, default: str) -> str:
    """A display name (falls back to `default`, e.g. the email's local part)."""
    cleaned = name.strip() or default
    if len(cleaned) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"display_name must be at most {MAX_DISPLAY_NAME} characters")
    return cleaned


def default_display_name(email: str) -> str:
    """The name an account gets when none is given: the email's local part."""
    return email.split("@")[0][:MAX_DISPLAY_NAME]


def check_country(country: str) -> str | None:
    """An ISO 3166-1 alpha-2 code (upper-cased), or None when not given."""
    cleaned = country.strip().upper()
    if not cleaned:
        return None
    if not _COUNTRY.match(cleaned):
        raise InvalidArgument("country must be an ISO 3166-1 alpha-2 code, e.g. SE")
    return cleaned


def check_product(product: str) -> str:
    cleaned = product.strip().lower()
    if cleaned not in PRODUCTS:
        raise InvalidArgument(f"product must be one of {', '.join(PRODUCTS)}")
    return cleaned


def check_self_service_product(current: str, wanted: str) -> None:
    """An account may cancel premium or restate what it has, never grant itself premium: that
    follows a payment, which billing records through the admin API (ROLE_PREMIUM)."""
    if wanted == "premium" and current != "premium":
        raise PermissionDenied(
            "premium starts with a payment; it is granted by billing, not by the account itself"
        )


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    """A role set to store: known roles only, and `user` always present."""
    result = set(roles) | {"user"}
    unknown = sorted(result - set(ROLES))
    if unknown:
        raise InvalidArgument(f"unknown role(s): {', '.join(unknown)}")
    return frozenset(result)


def check_role_change(
    admin_id: uuid.UUID, user_id: uuid.UUID, roles: Iterable[str], artist_ids: list[uuid.UUID]
) -> frozenset[str]:
    """The role set an admin may give a user: ROLE_ARTIST comes with the artists they manage, and
    no admin takes their own admin role away (someone must be left to give it back)."""
    wanted = check_roles(roles)
    if "artist" in wanted and not artist_ids:
        raise InvalidArgument("artist_ids is required with ROLE_ARTIST")
    if artist_ids and "artist" not in wanted:
        raise InvalidArgument("artist_ids is only allowed with ROLE_ARTIST")
    if user_id == admin_id and "admin" not in wanted:
        raise FailedPrecondition("an admin cannot remove their own admin role")
    return wanted


def check_ban(admin_id: uuid.UUID, user_id: uuid.UUID) -> None:
    if user_id == admin_id:
        raise FailedPrecondition("an admin cannot ban themselves")


def check_audit_event(action: str, resource_type: str, actor_ip: str, request_id: str) -> None:
    """Reject what the audit_logs columns cannot hold (an event from another service)."""
    if not action.strip():
        raise InvalidArgument("event.action is required")
    if len(action) > MAX_ACTION:
        raise InvalidArgument(f"event.action must be at most {MAX_ACTION} characters")
    if len(resource_type) > MAX_RESOURCE_TYPE:
        raise InvalidArgument(f"event.resource_type must be at most {MAX_RESOURCE_TYPE} characters")
    if actor_ip:
        try:
            ipaddress.ip_address(actor_ip)
        except ValueError:
            raise InvalidArgument(f"event.actor_ip {actor_ip!r} is not an IP address") from None
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(f"event.request_id must be at most {MAX_REQUEST_ID} characters")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL or an Origin header, lower-cased, without a default port;
    "" when it names no web origin ("null", a relative or malformed URL)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def allowed_origins(configured: Iterable[str], own_base_url: str) -> frozenset[str]:
    """The origins whose pages may write with the session cookie: the configured ones and the
    edge's own (the public base URL), always."""
    found = {origin_of(value) for value in configured} | {origin_of(own_base_url)}
    return frozenset(found - {""})


def cross_site(page_origin: str | None, allowed: frozenset[str]) -> bool:
    """Whether a write that a browser authenticated with the session cookie comes from a page
    outside `allowed` (a cross-site request forgery).

    No origin at all means no browser made the request: browsers state it on every request that
    is not a GET or HEAD, and only a browser attaches a cookie on someone else's behalf.
    """
    if page_origin is None:
        return False
    return origin_of(page_origin) not in allowed
