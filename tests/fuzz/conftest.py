"""The fuzz mesh: a whole mesh of the fuzz tests' own (`make test-fuzz`), whose rate limits are
raised through its limits file, so thousands of generated requests from one account and one
address are judged on their content, not refused as a burst. No other test runs on it: the rate
limit tests of `make test` need the real table.

The fixtures of tests/conftest.py build it; this file only hands auth_svc the raised table, and
prints the run's figures (operations, cases, statuses) at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auth_svc import limits
from tests.fuzz.fuzzer import STATS

# Enough for every case of a run (a few thousand per caller) inside any category's window.
RAISE_BY = 1000


@pytest.fixture(scope="session")
def mesh_env(run_dir: Path) -> dict[str, str]:
    """auth_svc reads the fuzz mesh's own limits file: the real table with every limit raised."""
    raised = re.sub(
        r"(?m)^limit = (\d+)$",
        lambda m: f"limit = {int(m.group(1)) * RAISE_BY}",
        limits.DEFAULT_PATH.read_text(),
    )
    path = run_dir / "ratelimits-fuzz.toml"
    path.write_text(raised)
    table = limits.load(path)
    assert all(c.limit >= 5 * RAISE_BY for c in table.categories.values()), "a limit was not raised"
    return {"AUTH_RATELIMIT_CONFIG": str(path)}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in STATS.report():
        terminalreporter.write_line(line)
