"""What the Envoy renders say about tracing and scraping (Envoy itself validates them in
make envoy-validate; tests/e2e/test_traces.py and test_observability.py run them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2

from meshctl import envoy_config


def _hcm(rendered: str) -> dict:
    config = yaml.safe_load(rendered)
    listeners = config["static_resources"]["listeners"]
    (public,) = [listener for listener in listeners if listener["name"] == "public"]
    return public["filter_chains"][0]["filters"][0]["typed_config"]


def test_k8s_keeps_one_trace_in_a_hundred_by_the_tracers_own_sampler() -> None:
    # Without the tracer's sampler, Envoy 1.40 kept every trace whatever random_sampling said
    # (1,000 requests at 1 %: 1,000 traces); with it, about 10.
    tracing = _hcm(envoy_config.render("k8s"))["tracing"]
    sampler = tracing["provider"]["typed_config"]["sampler"]
    assert sampler["name"] == "envoy.tracers.opentelemetry.samplers.trace_id_ratio_based"
    assert sampler["typed_config"]["sampling_percentage"] == {"numerator": 10_000, "denominator": "MILLION"}


def test_the_local_mesh_samples_what_it_is_told() -> None:
    overrides = {"tracing_collector": "127.0.0.1:4317", "tracing_sample_percent": 25}
    tracing = _hcm(envoy_config.render("local", overrides=overrides))["tracing"]
    sampler = tracing["provider"]["typed_config"]["sampler"]
    assert sampler["typed_config"]["sampling_percentage"]["numerator"] == 250_000
    assert "tracing" not in _hcm(envoy_config.render("local"))  # no collector, no tracing


def test_only_k8s_opens_a_stats_listener_and_it_reaches_the_admin_on_loopback() -> None:
    k8s = yaml.safe_load(envoy_config.render("k8s"))
    names = [listener["name"] for listener in k8s["static_resources"]["listeners"]]
    assert names == ["public", "stats"]
    (admin,) = [c for c in k8s["static_resources"]["clusters"] if c["name"] == "envoy_admin"]
    address = admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    local = yaml.safe_load(envoy_config.render("local"))
    assert [listener["name"] for listener in local["static_resources"]["listeners"]] == ["public"]


LIST_TAKEDOWNS = "/spotify.catalog.v1.CatalogService/ListTakedowns"


def _table_naming(tmp_path: Path, *methods: str) -> Path:
    table = tmp_path / "ratelimits.toml"
    listed = ", ".join(f'"{m}"' for m in methods)
    table.write_text(f'[categories.admin]\nlimit = 10\nwindow_s = 60\nscope = "user"\nmethods = [{listed}]\n')
    return table


def _contracts_without(tmp_path: Path, method: str) -> Path:
    """This checkout's descriptor set without one RPC: an older release's contracts."""
    service, name = method.strip("/").split("/")
    fds = descriptor_pb2.FileDescriptorSet.FromString(envoy_config.DEFAULT_DESCRIPTOR.read_bytes())
    for file in fds.file:
        for declared in file.service:
            if f"{file.package}.{declared.name}" == service:
                kept = [m for m in declared.method if m.name != name]
                del declared.method[:]
                declared.method.extend(kept)
    older = tmp_path / "older.binpb"
    older.write_bytes(fds.SerializeToString())
    return older


def test_the_rate_limit_table_must_name_public_rpcs_of_these_contracts(tmp_path: Path) -> None:
    typo = _table_naming(tmp_path, "/spotify.catalog.v1.CatalogService/ListTakedown")
    with pytest.raises(ValueError, match="ListTakedown"):
        envoy_config.build_context("local", overrides={"ratelimit_config": str(typo)})
    internal = _table_naming(tmp_path, "/spotify.catalog.v1.CatalogService/ExportUserData")
    with pytest.raises(ValueError, match="ExportUserData"):
        envoy_config.build_context("local", overrides={"ratelimit_config": str(internal)})


def test_an_older_releases_contracts_may_lack_rpcs_the_table_already_names(tmp_path: Path) -> None:
    """A rolling deploy: this checkout's table in front of the previous release's contracts."""
    older = _contracts_without(tmp_path, LIST_TAKEDOWNS)
    overrides = {"descriptor": str(older), "descriptor_source": str(older)}
    context = envoy_config.build_context("local", overrides=overrides)
    routed = {route["path"] for route in context["rpc_routes"]}
    assert LIST_TAKEDOWNS not in routed and "/spotify.catalog.v1.CatalogService/GetTrack" in routed
    internal = _table_naming(tmp_path, "/spotify.catalog.v1.CatalogService/ExportUserData")
    with pytest.raises(ValueError, match="ExportUserData"):  # still refused: it is there, and internal
        envoy_config.build_context("local", overrides={**overrides, "ratelimit_config": str(internal)})
