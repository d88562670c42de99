"""Every process's /metrics can be scraped in the cluster: each Deployment exposes its registry
metrics port, sets METRICS_PORT to it, and every pod listens for metrics on all interfaces."""

from __future__ import annotations

from typing import Any

import yaml

from meshkit.config import PROJECT_ROOT
from meshkit.services import METRICS_PORTS, PROCESSES, get

BASE = PROJECT_ROOT / "k8s" / "base"


def _documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(BASE.rglob("*.yaml")):
        if path.parent.name == "envoy":
            continue  # Envoy's own configuration, not a manifest
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def test_pods_listen_for_metrics_on_all_interfaces() -> None:
    (config,) = [
        d for d in _documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "mesh-config"
    ]
    assert config["data"]["METRICS_HOST"] == "0.0.0.0"


def test_every_process_exposes_its_registry_metrics_port() -> None:
    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    for name in PROCESSES:
        deployment = deployments[get(name).host_name]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert ports["metrics"] == METRICS_PORTS[name], name
        assert env["METRICS_PORT"] == str(METRICS_PORTS[name]), name
        assert {"configMapRef": {"name": "mesh-config"}} in container["envFrom"], name
