"""The signed-in session: its bearer token, kept in memory or in a file the app names.

A token file is written atomically and readable by its owner only (it is a password for as long
as the session lives); a missing file means signed out.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class TokenStore:
    """Where the session token lives: memory only, or also `path` (survives restarts)."""

    def __init__(self, path: str | Path | None = None, token: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self._token = token
        if not token and self.path is not None and self.path.exists():
            self._token = self.path.read_text().strip()

    @property
    def token(self) -> str:
        return self._token

    def save(self, token: str) -> None:
        self._token = token
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token)
            os.replace(staging, self.path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self._token = ""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
