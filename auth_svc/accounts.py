"""Account rules that need no I/O: what an email, a name, a country, a product and roles may be.

Every check raises InvalidArgument before anything is stored, so bad input never reaches the
database (where a CHECK constraint would turn it into a 500).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from auth_svc.models import ROLES
from meshkit.errors import InvalidArgument

PRODUCTS = ("free", "premium")
MAX_DISPLAY_NAME = 100
# Deliberately loose (one @, a dot in the domain, no spaces): the real check is a confirmation
# mail, which this backend does not send.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def normalise_email(email: str) -> str:
    """Emails are compared and stored stripped and lower-cased (unique on lower(email))."""
    return email.strip().lower()


def check_email(email: str, *, field: str = "email") -> str:
    """The normalised email, or InvalidArgument."""
    normalised = normalise_email(email)
    if not normalised:
        raise InvalidArgument(f"{field} is required")
    if len(normalised) > 320 or not _EMAIL.match(normalised):
        raise InvalidArgument(f"{field} is not a valid email address")
    return normalised


def check_display_name(name: str, default: str) -> str:
    """A display name (falls back to `default`, e.g. the email's local part)."""
    cleaned = name.strip() or default
    if len(cleaned) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"display_name must be at most {MAX_DISPLAY_NAME} characters")
    return cleaned


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


def product_of(roles: Iterable[str]) -> str:
    """Premium is a role; the Spotify `product` field is derived from it."""
    return "premium" if "premium" in set(roles) else "free"


def with_product(roles: Iterable[str], product: str) -> frozenset[str]:
    """The roles after switching to `product` (premium role on or off; `user` always kept)."""
    result = set(roles) | {"user"}
    if product == "premium":
        result.add("premium")
    else:
        result.discard("premium")
    return frozenset(result)


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    """A role set to store: known roles only, and `user` always present."""
    result = set(roles) | {"user"}
    unknown = sorted(result - set(ROLES))
    if unknown:
        raise InvalidArgument(f"unknown role(s): {', '.join(unknown)}")
    return frozenset(result)
