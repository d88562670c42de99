"""The alert rules and their unit tests, through promtool (Debian's, installed by make install),
and the runbook every alert links to."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from meshctl.observability import RULES_DIR
from meshkit.config import PROJECT_ROOT

RULES = RULES_DIR / "alerts.rules.yml"
RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"
SEED_ALERTS = {
    "HighErrorRate",
    "SlowPlaybackStart",
    "LowCacheHitRate",
    "KafkaConsumerLag",
    "DatabaseConnections",
    "RedisMemory",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (make install)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=RULES_DIR, timeout=120)


def _alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_and_stays_silent_in_promtools_unit_tests() -> None:
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((RULES_DIR / "alerts.test.yml").read_text())["tests"]
    firing, silent = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {str(rule["alert"]) for rule in _alerts()}
    assert SEED_ALERTS | {"StreamingErrorBudgetBurn"} <= names
    assert firing == names and silent == names


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_to_a_section_of_the_runbook() -> None:
    anchors = {_anchor(line[3:]) for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}
    for rule in _alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        path, _, anchor = str(annotations["runbook_url"]).partition("#")
        assert path == "docs/runbook.md" and anchor in anchors, rule["alert"]
