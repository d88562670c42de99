"""Tracing is wired in exactly when spans have somewhere to go."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _probe(endpoint: str) -> list[str]:
    """configure_tracing in a fresh interpreter (the tracer provider is process-global)."""
    code = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from meshkit import telemetry
        telemetry.configure_tracing("probe", {endpoint!r})
        print(telemetry.tracing_enabled(), len(telemetry.server_interceptors()),
              len(telemetry.client_interceptors()), type(trace.get_tracer_provider()).__name__)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_an_otlp_endpoint_installs_the_exporter_and_the_interceptors() -> None:
    enabled, server, client, provider = _probe("http://127.0.0.1:4317")
    assert (enabled, provider) == ("True", "TracerProvider")
    assert int(server) == 1
    assert int(client) >= 1


def test_without_an_endpoint_no_interceptor_costs_cpu() -> None:
    enabled, server, client, _provider = _probe("")
    assert (enabled, server, client) == ("False", "0", "0")
