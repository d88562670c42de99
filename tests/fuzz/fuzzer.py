"""One generated request through Envoy, judged: no 5xx, the answer conforms to the OpenAPI
document, and a refused request (4xx) changed no stored row.

The database is compared as a count and a checksum per table (tests/e2e/db_state.py), leaving out
what background consumers and the audit log write (refusals such as failed logins are audited on
purpose). A snapshot is taken after every call: after an accepted one it becomes the state the
next refusal is compared with.
"""

from __future__ import annotations

import collections
import http.cookiejar
from dataclasses import dataclass, field

import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e import db_state

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Stats:
    """What a run generated and what it got back, per caller."""

    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    operations: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    statuses: dict[str, collections.Counter[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )

    def record(self, caller: str, operation: str, status: int) -> None:
        self.cases[caller] += 1
        self.operations[caller].add(operation)
        self.statuses[caller][status] += 1

    def report(self) -> list[str]:
        lines = []
        for caller in sorted(self.cases):
            by_class = collections.Counter(
                f"{status // 100}xx" for status in self.statuses[caller].elements()
            )
            classes = ", ".join(f"{name} {count}" for name, count in sorted(by_class.items()))
            lines.append(
                f"fuzz ({caller}): {len(self.operations[caller])} operations, "
                f"{self.cases[caller]} cases: {classes}"
            )
        return lines


STATS = Stats()


class Fuzzer:
    """Sends cases through Envoy as one caller and checks each answer and the stored rows."""

    def __init__(self, envoy_url: str, database_url: str) -> None:
        self.envoy_url = envoy_url
        self.http = requests.Session()
        # Each case brings its own credentials: a login's session cookie must not ride along.
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.snapshots = db_state.Snapshots(database_url)
        self.state = self.snapshots.take()

    def close(self) -> None:
        self.http.close()
        self.snapshots.close()

    def settle(self) -> None:
        """Take the current state as the baseline (after a setup step that writes on purpose)."""
        self.state = self.snapshots.take()

    def run(self, caller: str, case: schemathesis.Case, headers: dict[str, str]) -> requests.Response:
        response = case.call(base_url=self.envoy_url, session=self.http, headers=headers, timeout=15)
        STATS.record(caller, str(case.operation.definition.raw["operationId"]), response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        finally:
            before, self.state = self.state, self.snapshots.take()
        if 400 <= response.status_code < 500:
            changed = db_state.changed(before, self.state)
            assert not changed, (
                f"{case.method} {case.formatted_path} was refused ({response.status_code}) "
                f"but changed {changed}: {response.text[:300]}"
            )
        return response
