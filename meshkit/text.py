"""Rules for text that clients send, shared by every service that stores or signs it."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a C0 control character or DEL. No name, key or path should, and
    PostgreSQL text cannot store NUL at all: such input fails far from the request that sent it."""
    return _CONTROL.search(text) is not None
