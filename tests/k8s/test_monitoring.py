"""k8s/components/monitoring, as the prod overlay renders it with the real kustomize: the
cluster's Prometheus runs the repository's rules and scrapes the same targets under the same job
names as the local one, and Grafana gets the generated dashboard.

No registry package carries the Prometheus Operator's CRD schemas, so the fields this mesh
depends on (selectors, ports, paths, relabelings, honorLabels, the rule groups) are checked
here; promtool checks the rules themselves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from meshctl import dashboards, k8s_monitoring
from meshkit.services import PROCESSES
from tests.k8s.manifests import selects


def _of(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_the_generated_files_are_current() -> None:
    for name, text in k8s_monitoring.render().items():
        path = k8s_monitoring.COMPONENT_DIR / name
        assert path.read_text() == text, f"{path} is stale: run make gen"


def test_the_cluster_runs_the_repositorys_rules(prod: list[dict[str, Any]], tmp_path: Path) -> None:
    rule = _of(prod, "PrometheusRule")[k8s_monitoring.RULE_NAME]
    groups = rule["spec"]["groups"]
    assert groups == yaml.safe_load(k8s_monitoring.RULES_FILE.read_text())["groups"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (make install)"
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": groups}))
    checked = subprocess.run([promtool, "check", "rules", str(extracted)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str]:
    """Prometheus's `replace` relabeling, enough for the rules these monitors use."""
    out = dict(labels)
    for rule in rules:
        source = ";".join(out.get(name, "") for name in rule.get("sourceLabels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), source)
        if match:
            out[rule["targetLabel"]] = match.expand(
                re.sub(r"\$\{(\d+)\}|\$(\d+)", r"\\\1\2", rule.get("replacement", "$1"))
            )
    return out


def _metrics_port(deployment: dict[str, Any]) -> int | None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    return ports.get("metrics")


def test_every_pod_with_metrics_is_scraped_under_its_local_job_name(prod: list[dict[str, Any]]) -> None:
    monitors = _of(prod, "PodMonitor")
    scraped: dict[str, str] = {}
    for name, deployment in _of(prod, "Deployment").items():
        if _metrics_port(deployment) is None:
            continue
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        meta = {
            "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key): value
            for key, value in pod_labels.items()
        }
        selecting = [m for m in monitors.values() if selects(m["spec"]["selector"], pod_labels)]
        if name == "pushgateway":
            assert not selecting  # scraped through its ServiceMonitor, with honorLabels
            continue
        assert len(selecting) == 1, name
        (endpoint,) = selecting[0]["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] == "metrics", name
        labels = _relabel(meta, endpoint.get("relabelings", []))
        scraped[name] = labels["job"]
        assert labels["service"] == labels["job"], name
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:  # for a plain Prometheus: the same port and path
            assert annotations["prometheus.io/port"] == str(_metrics_port(deployment)), name
            assert annotations.get("prometheus.io/path", "/metrics") == endpoint["path"], name
    local = {"envoy", "redis", "postgres", *PROCESSES}
    assert set(scraped.values()) == local  # every local job, and only those


def test_batch_jobs_push_to_a_gateway_scraped_with_their_labels(prod: list[dict[str, Any]]) -> None:
    (config,) = [c for c in _of(prod, "ConfigMap").values() if c["metadata"]["name"] == "mesh-config"]
    gateway = _of(prod, "Service")["pushgateway"]
    (port,) = gateway["spec"]["ports"]
    assert config["data"]["PUSHGATEWAY_URL"] == f"http://pushgateway.spotify.svc.cluster.local:{port['port']}"
    monitor = _of(prod, "ServiceMonitor")["spotify-mesh-pushgateway"]
    assert selects(monitor["spec"]["selector"], gateway["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["honorLabels"] is True
    cronjobs = _of(prod, "CronJob")
    assert {"rec-batch", "monthly-listeners", "purge-write-requests"} <= set(cronjobs)
    for name, cronjob in cronjobs.items():
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", name
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": "mesh-config"}} in container["envFrom"], name


def test_grafana_gets_the_generated_dashboard(prod: list[dict[str, Any]]) -> None:
    config = _of(prod, "ConfigMap")["spotify-mesh-dashboard"]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    name = dashboards.DASHBOARD_FILE.name
    assert config["data"][name] == dashboards.DASHBOARD_FILE.read_text()
