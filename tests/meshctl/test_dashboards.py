"""The generated Grafana dashboard: current with its code, valid for the library's dashboard
model, and covering the seed's five SLI panels (their PromQL runs in tests/e2e/test_observability)."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from meshctl import dashboards
from meshkit.services import PROCESSES


def test_the_committed_files_are_current() -> None:
    for name, text in dashboards.render().items():
        committed = dashboards.GRAFANA_DIR / name
        assert committed.read_text() == text, f"stale: {committed} (run make gen)"


def test_the_json_is_a_dashboard_of_the_library_model() -> None:
    data = json.loads(dashboards.DASHBOARD_FILE.read_text())
    model = Dashboard.from_json(data)
    assert json.loads(JSONEncoder().encode(model)) == data  # nothing unknown, nothing lost
    assert model.uid == dashboards.UID


def test_the_seeds_sli_panels_and_a_row_per_service() -> None:
    rows = dict(dashboards.rows())
    exprs = {q.expr for p in rows["SLIs"] for q in p.queries}
    assert (
        'sum(rate(http_request_duration_seconds_count{status_code!~"5.."}[5m]))'
        " / sum(rate(http_request_duration_seconds_count[5m]))"
    ) in exprs
    assert (
        "histogram_quantile(0.95, sum(rate("
        'http_request_duration_seconds_bucket{route="/api/playback/stream"}[5m])) by (le))'
    ) in exprs
    assert len(rows["SLIs"]) == 5
    assert {f"Service: {name}" for name in PROCESSES} <= set(rows)
    for name in ("Edge (Envoy)", "Kafka", "PostgreSQL", "Redis"):
        assert rows[name], name
    data = json.loads(dashboards.DASHBOARD_FILE.read_text())
    titles = [p["title"] for p in data["panels"] if p["type"] != "row"]
    assert titles == [p.title for p in dashboards.panels()]
