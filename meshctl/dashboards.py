"""The mesh's Grafana dashboard, as code (grafana-foundation-sdk), and its provisioning files.

`python -m meshctl.dashboards` (run by `make gen`) writes `observability/grafana/`; a test fails
when the committed files are stale, and another runs every panel's expression on a real
Prometheus. The queries use fixed windows (`[5m]`), as the seed writes them, so each one is
plain PromQL that Prometheus answers as it stands.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import yaml
from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from meshkit.config import PROJECT_ROOT
from meshkit.services import PROCESSES

GRAFANA_DIR = PROJECT_ROOT / "observability" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "spotify-mesh.json"
UID = "spotify-mesh"
# Panels query whichever Prometheus the `datasource` variable names (provisioned as "Prometheus").
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
STREAM = 'route="/api/playback/stream"'
EDGE = 'envoy_http_conn_manager_prefix="public"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    title: str
    queries: tuple[Query, ...]
    unit: str
    kind: str = "timeseries"  # or "stat"
    description: str = ""


def _sli() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Availability SLI (target 99.99 %)",
            (
                Query(
                    'sum(rate(http_request_duration_seconds_count{status_code!~"5.."}[5m]))'
                    " / sum(rate(http_request_duration_seconds_count[5m]))"
                ),
            ),
            "percentunit",
            "stat",
            "Requests the services answered without a 5xx, JSON and gRPC alike.",
        ),
        PanelSpec(
            "Latency SLI p95 by route (target < 200 ms for streaming)",
            (
                Query(
                    "histogram_quantile(0.95,"
                    " sum(rate(http_request_duration_seconds_bucket[5m])) by (le, route))",
                    "{{route}}",
                ),
            ),
            "s",
        ),
        PanelSpec(
            "Stream start latency p95 (target < 200 ms)",
            (
                Query(
                    "histogram_quantile(0.95, sum(rate("
                    f"http_request_duration_seconds_bucket{{{STREAM}}}[5m])) by (le))",
                    "p95",
                ),
            ),
            "s",
        ),
        PanelSpec(
            "Playback events throughput",
            (Query("sum(rate(playback_events_total[5m])) by (event_type)", "{{event_type}}"),),
            "ops",
        ),
        PanelSpec(
            "Cache hit ratio (target > 90 %)",
            (
                Query(
                    "sum(rate(cache_hits_total[5m]))"
                    " / (sum(rate(cache_hits_total[5m])) + sum(rate(cache_misses_total[5m])))"
                ),
            ),
            "percentunit",
            "stat",
        ),
    ]


def _edge() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Edge availability (Envoy, its own 5xx included)",
            (
                Query(
                    f'sum(rate(envoy_http_downstream_rq_xx{{{EDGE},envoy_response_code_class!="5"}}[5m]))'
                    f" / sum(rate(envoy_http_downstream_rq_xx{{{EDGE}}}[5m]))"
                ),
            ),
            "percentunit",
            "stat",
            "What clients got from Envoy: also the 503s and 504s it answered itself.",
        ),
        PanelSpec(
            "Edge latency p95 (Envoy)",
            (
                Query(
                    "histogram_quantile(0.95, sum(rate("
                    f"envoy_http_downstream_rq_time_bucket{{{EDGE}}}[5m])) by (le))",
                    "p95",
                ),
            ),
            "ms",
        ),
    ]


def _service(name: str) -> list[PanelSpec]:
    job = f'job="{name}"'
    return [
        PanelSpec(
            f"{name}: requests",
            (Query(f"sum(rate(http_request_duration_seconds_count{{{job}}}[5m]))", "requests/s"),),
            "reqps",
        ),
        PanelSpec(
            f"{name}: errors (5xx)",
            (
                Query(
                    f'sum(rate(http_request_duration_seconds_count{{{job},status_code=~"5.."}}[5m]))'
                    " or vector(0)",
                    "5xx/s",
                ),
            ),
            "reqps",
        ),
        PanelSpec(
            f"{name}: duration p95",
            (
                Query(
                    "histogram_quantile(0.95,"
                    f" sum(rate(http_request_duration_seconds_bucket{{{job}}}[5m])) by (le))",
                    "p95",
                ),
            ),
            "s",
        ),
    ]


def _kafka() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Consumer lag by group",
            (Query("sum by (group) (kafka_consumer_lag)", "{{group}}"),),
            "short",
        ),
        PanelSpec(
            "Outbox rows published",
            (Query("sum by (job) (rate(outbox_published_total[5m]))", "{{job}}"),),
            "ops",
        ),
    ]


def _postgres() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Pool use by service",
            (
                Query(
                    "max by (job, pool) (db_pool_connections_in_use / db_pool_connections_max)",
                    "{{job}} {{pool}}",
                ),
            ),
            "percentunit",
        ),
        PanelSpec(
            "Server connections by state",
            (Query("sum by (state) (pg_stat_activity_count)", "{{state}}"),),
            "short",
        ),
    ]


def _redis() -> list[PanelSpec]:
    return [
        PanelSpec("Memory used", (Query("redis_memory_used_bytes", "used"),), "bytes"),
        PanelSpec("Connected clients", (Query("redis_connected_clients", "clients"),), "short"),
        PanelSpec("Keys by database", (Query("sum by (db) (redis_db_keys)", "{{db}}"),), "short"),
    ]


def _batch_jobs() -> list[PanelSpec]:
    by_job = "{{service}} {{job}}"
    return [
        PanelSpec(
            "Since last success",
            (Query("max by (job, service) (time() - batch_job_last_success_timestamp_seconds)", by_job),),
            "s",
            description="BatchJobStale fires at 8 days.",
        ),
        PanelSpec(
            "Last run failed",
            (Query("max by (job, service) (batch_job_failed)", by_job),),
            "short",
            description="1 while the job's last run failed (BatchJobFailed).",
        ),
        PanelSpec(
            "Last run duration",
            (Query("max by (job, service) (batch_job_duration_seconds)", by_job),),
            "s",
        ),
        PanelSpec(
            "Last run processed",
            (Query("sum by (job, item) (batch_job_items)", "{{job}} {{item}}"),),
            "short",
        ),
    ]


def rows() -> list[tuple[str, list[PanelSpec]]]:
    """Every row of the dashboard with its panels, in order."""
    return [
        ("SLIs", _sli()),
        ("Edge (Envoy)", _edge()),
        *((f"Service: {name}", _service(name)) for name in PROCESSES),
        ("Kafka", _kafka()),
        ("PostgreSQL", _postgres()),
        ("Redis", _redis()),
        ("Batch jobs", _batch_jobs()),
    ]


def panels() -> list[PanelSpec]:
    return [panel for _, row in rows() for panel in row]


def build() -> DashboardBuilder:
    dashboard = (
        DashboardBuilder("Spotify mesh")
        .uid(UID)
        .tags(["spotify-mesh", "generated"])
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for title, specs in rows():
        dashboard = dashboard.with_row(Row(title))
        width = 24 // len(specs)
        for spec in specs:
            dashboard = dashboard.with_panel(_panel(spec, width))
    return dashboard


def _panel(spec: PanelSpec, width: int) -> Stat | Timeseries:
    panel = Stat() if spec.kind == "stat" else Timeseries()
    panel = panel.title(spec.title).unit(spec.unit).datasource(DATASOURCE).span(width).height(7)
    if spec.description:
        panel = panel.description(spec.description)
    for query in spec.queries:
        target = Dataquery().expr(query.expr).datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        panel = panel.with_target(target)
    return panel


def render() -> dict[str, str]:
    """The files under observability/grafana/, by path relative to it."""
    dashboard = JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"
    datasources = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": "${PROMETHEUS_URL}",
                "isDefault": True,
            }
        ],
    }
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "spotify-mesh",
                "type": "file",
                "disableDeletion": True,
                "options": {"path": "/var/lib/grafana/dashboards/spotify-mesh"},
            }
        ],
    }
    return {
        DASHBOARD_FILE.name: dashboard,
        # Grafana reads provisioning files as YAML, with ${VAR} taken from its environment.
        "provisioning/datasources/prometheus.yaml": yaml.safe_dump(datasources, sort_keys=False),
        "provisioning/dashboards/spotify-mesh.yaml": yaml.safe_dump(providers, sort_keys=False),
    }


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """`files` (text by path relative to `directory`) written out; the paths written."""
    written = []
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def write(directory: Path = GRAFANA_DIR) -> list[Path]:
    return write_files(directory, render())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m meshctl.dashboards", description=__doc__.split("\n")[0])
    parser.parse_args()
    for path in write():
        print(path.relative_to(PROJECT_ROOT))


if __name__ == "__main__":
    main()
