"""Debian's chromium for the web player's browser tests and benchmark (driven by Playwright with
`executable_path`: Playwright cannot download a browser of its own here)."""

from __future__ import annotations

import shutil

# Chromium on a machine with no route out: nothing of its own may try to reach the network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str | None:
    """The chromium binary on PATH, if `make install` could install it."""
    return shutil.which("chromium") or shutil.which("chromium-browser")
