"""What the Envoy renders say about tracing and scraping (Envoy itself validates them in
make envoy-validate; tests/e2e/test_traces.py and test_observability.py run them)."""

from __future__ import annotations

import yaml

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
