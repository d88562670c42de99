"""The edge's rate-limit fail mode is auth_svc's (AUTH_RATELIMIT_FAIL_OPEN), in the rendered config."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl import envoy_config, mesh


def _ratelimit_filter(rendered: str) -> str:
    start = rendered.index("- name: envoy.filters.http.ratelimit\n")
    return rendered[start : rendered.index("- name: envoy.filters.http.fault\n", start)]


def test_open_lets_traffic_through_and_closed_answers_503() -> None:
    opened = _ratelimit_filter(envoy_config.render("local", overrides={"ratelimit_fail_open": True}))
    closed = _ratelimit_filter(envoy_config.render("local", overrides={"ratelimit_fail_open": False}))
    assert "failure_mode_deny: false" in opened and "status_on_error" not in opened
    assert "failure_mode_deny: true" in closed
    assert "status_on_error: { code: ServiceUnavailable }" in closed


@pytest.mark.parametrize(("setting", "fail_open"), [("true", True), ("false", False)])
def test_the_local_mesh_renders_auths_setting(
    setting: str, fail_open: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTH_RATELIMIT_FAIL_OPEN", setting)
    running = mesh.Mesh(mesh.Layout(run_dir=tmp_path), "postgresql+psycopg://x/y", "redis://x", "x:1")
    assert mesh.envoy_overrides(running)["ratelimit_fail_open"] is fail_open
