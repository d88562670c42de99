"""Several processes per service: the layout's ports, what callers and Envoy are told, Prometheus'
targets, and the order `make down` stops them in. Pure: nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshctl import envoy_config, mesh, observability
from meshkit.services import INTERNAL_PORTS, PROCESSES


def _layout(tmp_path: Path, count: int) -> mesh.Layout:
    return mesh.with_replicas(mesh.free_layout(tmp_path), count)


def test_each_replica_has_ports_of_its_own(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 3)
    assert layout.replica_count == 3
    every = layout.all_replicas()
    assert len(every) == 3 * len(PROCESSES)
    assert [r.index for r in every[: len(PROCESSES)]] == [1] * len(PROCESSES)  # first replicas first
    ports = [p for r in every for p in (r.port, r.metrics_port, r.internal_port) if p is not None]
    assert len(ports) == len(set(ports))
    names = {r.name for r in every}
    assert {"catalog_svc", "catalog_svc-2", "catalog_svc-3", "media_svc-3"} <= names
    assert all((r.internal_port is None) == (r.service not in INTERNAL_PORTS) for r in every)
    assert {mesh.service_of(r.name) for r in every} == set(PROCESSES)
    assert mesh.service_of("postgres") == "postgres" and mesh.service_of("redis-exporter") == "redis-exporter"


def test_one_replica_is_the_layout_as_it_was(tmp_path: Path) -> None:
    plain = mesh.free_layout(tmp_path)
    layout = mesh.with_replicas(plain, 1)
    assert layout == plain and layout.replica_count == 1
    assert layout.call_target("catalog_svc") == f"127.0.0.1:{plain.internal_ports['catalog_svc']}"


def test_callers_get_every_replica_and_envoy_an_endpoint_each(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 2)
    running = mesh.Mesh(layout, "postgresql+psycopg://x@127.0.0.1/db", "redis://127.0.0.1:1/0", "127.0.0.1:2")
    replicas = layout.replicas("auth_svc")
    assert running.service_env()["AUTH_ADDR"] == "ipv4:" + ",".join(
        f"127.0.0.1:{r.internal_port}" for r in replicas
    )
    rendered = yaml.safe_load(envoy_config.render("local", overrides=mesh.envoy_overrides(running)))
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    for service in PROCESSES:
        endpoints = clusters[service]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]
        assert ports == [r.port for r in layout.replicas(service)], service


def test_prometheus_scrapes_every_replica_under_its_services_job(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 2)
    running = mesh.Mesh(layout, "postgresql+psycopg://x@127.0.0.1/db", "redis://127.0.0.1:1/0", "127.0.0.1:2")
    jobs = {job["job_name"]: job for job in observability.prometheus_config(running)["scrape_configs"]}
    for service in PROCESSES:
        (static,) = jobs[service]["static_configs"]
        assert static["targets"] == [f"127.0.0.1:{r.metrics_port}" for r in layout.replicas(service)]


def test_replicas_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mesh.REPLICAS_ENV, raising=False)
    assert mesh.replicas_from_env() == 1
    monkeypatch.setenv(mesh.REPLICAS_ENV, "3")
    assert mesh.replicas_from_env() == 3
    monkeypatch.setenv(mesh.REPLICAS_ENV, "two")
    with pytest.raises(ValueError, match="MESH_REPLICAS must be a whole number"):
        mesh.replicas_from_env()
    with pytest.raises(ValueError, match="at least 1"):
        mesh.with_replicas(mesh.Layout(), 0)
