"""Keys a process signs or encrypts with, and the refusal to start production on a development key.

Every key setting has a committed default so that `make up` works with no configuration. Those
defaults are public, so in production (`MESH_ENV`, the default) a process checks each key it uses
before it serves: missing, empty, or containing any committed development entry, even as a
verify-only second key in a rotation list (which would let anyone mint URLs or licenses), and it
exits naming the setting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from meshkit.config import DEV_MEDIA_SIGNING_KEYS, Settings

log = logging.getLogger(__name__)
# Exit status of a process that refused its configuration (a supervisor should not retry fast).
REFUSED = 78  # EX_CONFIG


@dataclass(frozen=True)
class Secret:
    env: str  # the environment variable that sets it
    value: str
    development: str  # the committed default
    # A list of "kid:secret" entries (a rotation ring) rather than one value.
    ring: bool = False

    def problem(self) -> str | None:
        if not self.value.strip():
            return f"{self.env} is not set"
        if not self.ring:
            return (
                f"{self.env} is the committed development value" if self.value == self.development else None
            )
        entries = {entry.strip() for entry in self.value.split(",")}
        development = {entry.strip() for entry in self.development.split(",")}
        shared = entries & development
        if shared:
            kids = ", ".join(sorted(entry.partition(":")[0] for entry in shared))
            return f"{self.env} holds the committed development key(s) {kids}"
        return None


class InsecureConfiguration(RuntimeError):
    """A production process was given no key, or a development one."""


def media_signing(settings: Settings) -> Secret:
    return Secret("MEDIA_SIGNING_KEYS", settings.media_signing_keys, DEV_MEDIA_SIGNING_KEYS, ring=True)


def refuse_development_keys(settings: Settings, secrets: Iterable[Secret]) -> None:
    """Raise InsecureConfiguration, naming every bad setting, unless MESH_ENV=development."""
    if settings.mesh_env == "development":
        return
    problems = [problem for secret in secrets if (problem := secret.problem()) is not None]
    if problems:
        raise InsecureConfiguration(
            "refusing to start in production (MESH_ENV=production): "
            + "; ".join(problems)
            + ". Set real keys from a Secret, or MESH_ENV=development on a developer's machine."
        )


def exit_unless_safe(settings: Settings, secrets: Iterable[Secret]) -> None:
    """At a process's start, after logging is configured: log the refusal and exit REFUSED."""
    try:
        refuse_development_keys(settings, secrets)
    except InsecureConfiguration as exc:
        log.critical(str(exc), extra={"mesh_env": settings.mesh_env})
        sys.exit(REFUSED)
