"""The suite's skip rule, as pytest hooks (tests/conftest.py installs them; docstring there).

A test may be skipped only because the machine lacks something the test needs, and its reason
says what: it starts with SKIP_PREFIX ("needs docker", "needs an NVIDIA GPU"). Any other skip,
whether from `pytest.skip()`, a `skip`/`skipif` mark, `pytest.importorskip()` or a module-level
skip, is turned into a failure of that test (or of collecting that module) with a message naming
the rule, so `make test` and CI fail. An expected failure (`xfail`) is refused the same way: a
failure that does not count is a skip by another name.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

SKIP_PREFIX = "needs "
_SKIPPED = "Skipped: "


def refusal(reason: str) -> str | None:
    """Why a skip with `reason` breaks the rule, or None when it names a missing capability."""
    if reason.startswith(SKIP_PREFIX) and len(reason) > len(SKIP_PREFIX):
        return None
    return (
        f"skipped without naming a missing machine capability (a skip's reason must start with "
        f"{SKIP_PREFIX!r}, e.g. 'needs docker'; fail instead when a precondition fails): {reason!r}"
    )


def _reason(longrepr: object) -> str:
    """The reason pytest recorded for a skip: (path, line, "Skipped: <reason>")."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix(_SKIPPED)
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        problem = f"marked xfail ({report.wasxfail!r}): a failure that does not count is a skip; fix it"
        del report.wasxfail  # else reporters still count it as an expected failure
    else:
        problem = refusal(_reason(report.longrepr))
    if problem is not None:
        report.outcome = "failed"
        report.longrepr = problem


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped:
        problem = refusal(_reason(report.longrepr))
        if problem is not None:
            report.outcome = "failed"
            report.longrepr = problem
