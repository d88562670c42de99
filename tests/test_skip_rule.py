"""The skip rule (tests/skip_rule.py) on a small suite of its own, run by a separate pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

from meshkit.config import PROJECT_ROOT

SUITE = {
    "conftest.py": "from tests.skip_rule import pytest_make_collect_report, pytest_runtest_makereport\n",
    "test_cases.py": """
        import pytest

        @pytest.mark.skipif(True, reason="needs an NVIDIA GPU")
        def test_capability_mark():
            pass

        def test_capability_call():
            pytest.skip("needs docker")

        def test_passes():
            pass

        def test_login_failed():
            pytest.skip("login failed: testing anonymously")

        @pytest.mark.skip
        def test_bare_mark():
            pass

        @pytest.mark.skipif(True, reason="flaky on CI")
        def test_reasoned_mark():
            pass

        def test_just_needs():
            pytest.skip("needs ")

        @pytest.mark.xfail(reason="not implemented yet")
        def test_expected_failure():
            assert False

        def test_missing_import():
            pytest.importorskip("no_such_module_anywhere")
    """,
    "test_module_skip.py": """
        import pytest

        pytest.skip("auth_svc is not ready", allow_module_level=True)

        def test_never_collected():
            pass
    """,
    "test_module_capability.py": """
        import pytest

        pytest.skip("needs a second network interface", allow_module_level=True)
    """,
}


def test_only_skips_that_name_a_missing_capability_pass(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    # Collection errors would stop the run before the rest is reported: go on past them.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
    done = subprocess.run(
        [*command, f"--junitxml={report}", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name") or case.get("classname") or "?"] = kinds[0] if kinds else "passed"
    assert outcomes == {
        "test_capability_mark": "skipped",
        "test_capability_call": "skipped",
        "test_passes": "passed",
        "test_login_failed": "failure",
        "test_bare_mark": "error",  # refused in setup, where the mark skips it
        "test_reasoned_mark": "error",
        "test_just_needs": "failure",
        "test_expected_failure": "failure",
        "test_missing_import": "failure",
        "test_module_skip": "error",  # the module's collection fails
        "test_module_capability": "skipped",
    }, done.stdout
    assert "must start with 'needs '" in done.stdout
