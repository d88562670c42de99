"""The mesh under a real Prometheus: every process scraped, and the seed's SLI queries answered by
the series that traffic through Envoy leaves (route labels as the seed writes them, health and
ext_authz calls outside the request SLI, Envoy's own statistics under its native names)."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from devdata import demo
from meshctl import dashboards, observability
from meshctl.mesh import Mesh
from meshctl.processes import ProcessTable
from tests.e2e.clients import bearer
from tests.support import until

pytestmark = pytest.mark.e2e

Client = Callable[..., httpx.Client]
STREAM_STARTS = 20

SLI = {
    "availability": 'sum(rate(http_request_duration_seconds_count{status_code!~"5.."}[5m]))'
    " / sum(rate(http_request_duration_seconds_count[5m]))",
    "latency_p95_by_route": "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m]))"
    " by (le, route))",
    "stream_start_p95": "histogram_quantile(0.95, sum(rate("
    'http_request_duration_seconds_bucket{route="/api/playback/stream"}[5m])) by (le))',
    "playback_events_throughput": "sum(rate(playback_events_total[5m])) by (event_type)",
    "cache_hit_ratio": "sum(rate(cache_hits_total[5m])) / (sum(rate(cache_hits_total[5m]))"
    " + sum(rate(cache_misses_total[5m])))",
}


# What each alert measures: its expression without the threshold (for RedisMemory, the two
# series it divides: on a Redis without maxmemory the ratio has no value, by design).
ALERT_QUANTITIES = {
    "HighErrorRate": [
        '(sum(rate(http_request_duration_seconds_count{status_code=~"5.."}[5m])) or vector(0))'
        " / sum(rate(http_request_duration_seconds_count[5m]))"
    ],
    "SlowPlaybackStart": [
        "histogram_quantile(0.95,"
        ' sum(rate(http_request_duration_seconds_bucket{route="/api/playback/stream"}[5m])) by (le))'
    ],
    "LowCacheHitRate": [
        "sum(rate(cache_hits_total[15m]))"
        " / (sum(rate(cache_hits_total[15m])) + sum(rate(cache_misses_total[15m])))"
    ],
    "KafkaConsumerLag": ["sum by (group) (kafka_consumer_lag)"],
    "DatabaseConnections": ["max by (job, pool) (db_pool_connections_in_use / db_pool_connections_max)"],
    "RedisMemory": ["redis_memory_used_bytes", "redis_memory_max_bytes"],
    "RedisMemoryUnbounded": ["redis_memory_max_bytes"],
    "StreamingErrorBudgetBurn": [
        "sli:stream_start_errors:ratio_rate5m",
        "sli:stream_start_errors:ratio_rate30m",
        "sli:stream_start_errors:ratio_rate1h",
        "sli:stream_start_errors:ratio_rate6h",
    ],
    # The mesh's start runs the rec batch, which pushes its outcome.
    "BatchJobFailed": ["max by (job, service) (batch_job_failed)"],
    "BatchJobStale": ["max by (job, service) (time() - batch_job_last_success_timestamp_seconds)"],
}


def _squashed(text: str) -> str:
    return "".join(text.split())


def test_the_alert_quantities_here_are_the_rules_own() -> None:
    rules = yaml.safe_load((observability.RULES_DIR / "alerts.rules.yml").read_text())["groups"]
    alerts = {r["alert"]: _squashed(r["expr"]) for g in rules for r in g["rules"] if "alert" in r}
    assert set(alerts) == set(ALERT_QUANTITIES)
    for name, quantities in ALERT_QUANTITIES.items():
        for quantity in quantities:
            assert _squashed(quantity) in alerts[name], (name, quantity)


@pytest.fixture(scope="module")
def prometheus(running_mesh: Mesh, procs: ProcessTable) -> Iterator[httpx.Client]:
    missing = observability.missing_binaries()
    assert not missing, f"make install installs these Debian packages: {missing}"
    url = observability.start(running_mesh, procs)
    assert url is not None
    # A batch job's outcome, pushed as a CronJob's is (the alerts on batch jobs measure it).
    pushed = subprocess.run(
        [sys.executable, "-m", "catalog_svc.jobs", "purge-write-requests"],
        env={**running_mesh.service_env(), "PUSHGATEWAY_URL": observability.pushgateway_url(running_mesh)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client
    observability.stop(running_mesh.layout.run_dir, procs)


def query(prometheus: httpx.Client, promql: str) -> list[dict[str, Any]]:
    reply = prometheus.get("/api/v1/query", params={"query": promql})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def drive(http: httpx.Client, token: str, stream_starts: int) -> None:
    """What the README's curl session does, and a listener's stream starts and events."""
    me = bearer(token)
    assert http.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}", headers=me).status_code == 200
    for _ in range(2):  # the second page is served from library's track cache
        items = http.get(f"/v1/playlists/{demo.DEMO_PLAYLIST_ID}/items", headers=me)
        assert items.status_code == 200, items.text
    for _ in range(stream_starts):
        started = http.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID}, headers=me)
        assert started.status_code == 200, started.text
    audio = http.get(started.json()["url"], headers={"range": "bytes=0-1023"})  # media_svc, via Envoy
    assert audio.status_code == 206, audio.text
    seeds = http.get("/v1/recommendations/available-genre-seeds", headers=me)  # rec_svc
    assert seeds.status_code == 200, seeds.text
    key = f"obs-{uuid.uuid4().hex}"
    events = [
        {"idempotency_key": key, "track_id": demo.DEMO_TRACK_ID, "event": "start", "device_type": "web"},
        {
            "idempotency_key": f"{key}-b",
            "track_id": demo.DEMO_TRACK_ID,
            "event": "start",
            "device_type": "toaster",
        },
    ]
    reported = http.post("/api/playback/events", json={"events": events}, headers=me)
    assert reported.status_code == 200, reported.text


@pytest.fixture(scope="module")
def traffic(prometheus: httpx.Client, envoy_client: Client, demo_token: str) -> None:
    """Two rounds: Prometheus must have scraped a series before it can see it grow (a series' first
    sample already holds its first requests, so rate() over them is 0 and a quantile NaN)."""
    http = envoy_client()
    drive(http, demo_token, 1)
    until(
        lambda: all(query(prometheus, promql) for promql in SLI.values()),
        "the first round's series to be scraped",
        30,
        interval=0.5,
    )
    drive(http, demo_token, STREAM_STARTS)


def test_every_process_of_the_mesh_is_scraped(running_mesh: Mesh, prometheus: httpx.Client) -> None:
    wanted = {target.job: "1" for target in observability.targets(running_mesh)}

    def states() -> dict[str, str]:
        return {s["metric"]["job"]: s["value"][1] for s in query(prometheus, "up")}

    try:
        until(lambda: states() == wanted, "every target to be scraped and up", 30, interval=0.5)
    except AssertionError:
        assert states() == wanted  # shows which target is missing or down


def test_envoys_stats_listener_serves_its_metrics_and_nothing_else_of_the_admin(
    running_mesh: Mesh,
) -> None:
    stats = f"http://127.0.0.1:{running_mesh.layout.envoy_stats_port}"
    scraped = httpx.get(f"{stats}/stats/prometheus", timeout=5)
    assert scraped.status_code == 200 and "envoy_cluster_upstream_rq" in scraped.text
    for method, path in [("GET", "/config_dump"), ("POST", "/quitquitquit"), ("POST", "/stats/prometheus")]:
        assert httpx.request(method, f"{stats}{path}", timeout=5).status_code == 404, (method, path)
    assert httpx.get(f"http://127.0.0.1:{running_mesh.layout.envoy_admin_port}/ready").status_code == 200


def test_the_seeds_sli_queries_answer_from_traffic_through_envoy(
    prometheus: httpx.Client, traffic: None
) -> None:
    driven = {"/api/playback/stream", "/v1/tracks/{id}", "/v1/playlists/{id}/items"}

    def answered() -> dict[str, list[dict[str, Any]]] | None:
        results = {name: query(prometheus, promql) for name, promql in SLI.items()}
        grown = all(
            series and all(math.isfinite(float(s["value"][1])) for s in series)
            for name, series in results.items()
            if name != "latency_p95_by_route"  # routes outside this test's traffic may be NaN
        )
        # Each service is scraped on its own schedule: wait for the ones behind these routes too.
        routes = {s["metric"].get("route") for s in results["latency_p95_by_route"]}
        return results if grown and driven <= routes else None

    results = until(answered, "every SLI query to return numbers", 30, interval=0.5)
    stream_start_p95 = float(results["stream_start_p95"][0]["value"][1])
    assert stream_start_p95 < 0.2, f"stream start p95 {stream_start_p95:.3f}s"
    assert {s["metric"]["event_type"] for s in results["playback_events_throughput"]} >= {"start"}
    assert 0 < float(results["cache_hit_ratio"][0]["value"][1]) <= 1


def test_control_calls_stay_out_of_the_request_sli_and_labels_stay_closed(
    prometheus: httpx.Client, traffic: None
) -> None:
    assert query(prometheus, 'http_request_duration_seconds_count{route=~"/grpc\\\\..*|/envoy\\\\..*"}') == []
    checks = until(
        lambda: query(
            prometheus,
            'control_call_duration_seconds_count{rpc="/envoy.service.auth.v3.Authorization/Check"}',
        ),
        "ext_authz calls under their own metric",
        30,
    )
    assert {s["metric"]["job"] for s in checks} == {"auth_svc"}

    def devices() -> set[str] | None:
        # The two events may land in different scrapes: wait for both before judging the labels.
        seen = {s["metric"]["device_type"] for s in query(prometheus, "playback_events_total")}
        return seen if {"web", "other"} <= seen else None

    assert "toaster" not in until(devices, "playback events by device, unknown ones as other", 30)


def test_envoys_own_statistics_are_scraped_under_its_names(prometheus: httpx.Client, traffic: None) -> None:
    edge = until(
        lambda: query(
            prometheus,
            "sum by (envoy_response_code_class)"
            ' (envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="public"})',
        ),
        "Envoy's downstream request counters",
        30,
    )
    assert "2" in {s["metric"].get("envoy_response_code_class") for s in edge}


def test_every_alert_measures_something_on_the_running_mesh(prometheus: httpx.Client, traffic: None) -> None:
    def empty() -> list[str]:
        return [
            quantity
            for quantities in ALERT_QUANTITIES.values()
            for quantity in quantities
            if not query(prometheus, quantity)
        ]

    try:
        until(lambda: not empty(), "every alert's quantity to have a value", 30, interval=0.5)
    except AssertionError:
        assert empty() == []  # names the quantities without a value


def test_every_dashboard_panel_has_data(prometheus: httpx.Client, traffic: None) -> None:
    def empty() -> list[str]:
        return [
            f"{panel.title}: {q.expr}"
            for panel in dashboards.panels()
            for q in panel.queries
            if not query(prometheus, q.expr)
        ]

    try:
        until(lambda: not empty(), "every panel's query to return series", 30, interval=0.5)
    except AssertionError:
        assert empty() == []  # names the panels without data
