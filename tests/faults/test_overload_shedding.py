"""Overload is shed at the edge: past its circuit breaker's requests in flight to a service, Envoy
answers 503 at once, in Spotify's shape, instead of queueing; the held request still completes,
and once it has, requests are admitted again.

Envoy is re-rendered with a limit of one request in flight per replica, so that one request held
in auth_svc (its session read kept back at the Redis proxy) fills auth_svc's breaker: every
routed request asks auth_svc first (ext_authz), so the next one must be refused without waiting.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from meshctl import envoy_config, mesh
from tests.faults.harness import SHAPED_503, FaultMesh, json_outcome, until
from tests.faults.proxy import Trap

ME = "/v1/me"


def _render_envoy(fm: FaultMesh, **overrides: int) -> None:
    """Envoy restarted on the local config with `overrides` (as an operator changing it would)."""
    envoy_config.write(
        "local", fm.run_dir / "envoy.yaml", overrides={**mesh.envoy_overrides(fm.mesh), **overrides}
    )
    victim = fm.kill("envoy", signal.SIGKILL)
    fm.wait_dead(victim)
    fm.wait_restarted(victim)
    until(fm.envoy_healthy, "Envoy to see every service again", 60)


@pytest.fixture
def one_in_flight(healthy_mesh: FaultMesh) -> Iterator[FaultMesh]:
    _render_envoy(healthy_mesh, max_requests_per_replica=1)
    try:
        yield healthy_mesh
    finally:
        _render_envoy(healthy_mesh)


def test_a_full_breaker_answers_503_at_once_and_admits_again_when_it_drains(
    one_in_flight: FaultMesh, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    fm = one_in_flight
    _, _, held_token = new_account("Held")
    _, _, other_token = new_account("Other")
    session_key = f"session:{hashlib.sha256(held_token.encode()).hexdigest()}".encode()
    trap = fm.redis_proxy.arm(Trap(lambda chunk: session_key in chunk, hold="request"))
    with httpx.Client(base_url=fm.mesh.envoy_url, timeout=30) as http, ThreadPoolExecutor(1) as pool:
        try:
            held = pool.submit(http.get, ME, headers={"authorization": f"Bearer {held_token}"})
            trap.wait(10)  # auth_svc is now working on the held request's ext_authz check

            started = time.monotonic()
            refused = http.get(ME, headers={"authorization": f"Bearer {other_token}"})
            took = time.monotonic() - started
            assert json_outcome(refused) == SHAPED_503
            assert took < 1.0, f"the refusal took {took:.2f}s: it queued instead of being shed"
            assert not held.done()
        finally:
            fm.redis_proxy.release(trap)
        assert held.result(timeout=30).status_code == 200
        # Drained: admitted again.
        again = http.get(ME, headers={"authorization": f"Bearer {other_token}"})
        assert again.status_code == 200, again.text
