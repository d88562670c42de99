"""Rate limiting when the limiter cannot count (its Redis held by the proxy) follows the configured
fail mode (AUTH_RATELIMIT_FAIL_OPEN) at the edge: open lets every request through, closed
answers 503 in Spotify's shape; once the limiter counts again its limits hold again.

Login is the probe: rate-limited per client address (5 per 15 minutes) and open without a
session, so the session lookup (which needs Redis too) is not in the way. ext_authz waits for the
limiter's Redis no longer than AUTH_RATELIMIT_TIMEOUT_S, well inside Envoy's deadline for
ext_authz, so auth_svc's fail mode decides, not Envoy's.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import asdict

import httpx
import pytest

from meshctl import supervisor
from tests.faults.harness import SHAPED_503, FaultMesh, json_outcome, until
from tests.faults.proxy import Trap
from tests.support import fresh_loopback_address

LOGIN_LIMIT = 5


def _configure(fm: FaultMesh, fail_open: bool) -> None:
    """auth_svc restarted with the fail mode (as an operator changing the setting would)."""
    spec = supervisor.spec_dir(fm.run_dir) / "auth_svc.json"
    program = supervisor.Program(**json.loads(spec.read_text()))
    program.env["AUTH_RATELIMIT_FAIL_OPEN"] = "true" if fail_open else "false"
    spec.write_text(json.dumps(asdict(program)))
    victim = fm.kill("auth_svc", signal.SIGKILL)
    fm.wait_dead(victim)
    fm.wait_restarted(victim)
    until(fm.envoy_healthy, "Envoy to see auth_svc again", 60)


def _logins(fm: FaultMesh, email: str, password: str, count: int) -> list[str]:
    with httpx.Client(
        base_url=fm.mesh.envoy_url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=fresh_loopback_address()),
    ) as client:
        return [
            json_outcome(client.post("/api/auth/login", json={"email": email, "password": password}))
            for _ in range(count)
        ]


def _limiter_holds(fm: FaultMesh, email: str, password: str) -> None:
    outcomes = _logins(fm, email, password, LOGIN_LIMIT + 1)
    assert outcomes[:LOGIN_LIMIT] == ["ok"] * LOGIN_LIMIT
    assert outcomes[LOGIN_LIMIT].startswith("429"), outcomes


@pytest.fixture
def account(
    healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]
) -> Iterator[tuple[str, str]]:
    email, password, _token = new_account("Limited")
    yield email, password


def test_rate_limiting_follows_its_configured_fail_mode(
    healthy_mesh: FaultMesh, account: tuple[str, str]
) -> None:
    fm = healthy_mesh
    email, password = account
    # The limiter's windows are the only Redis keys with the test mesh's rate-limit prefix.
    blind = Trap(lambda chunk: b"ratelimit-test-" in chunk, hold="request", once=False)

    # Open, as the mesh is configured: past the limit while the limiter cannot count.
    fm.redis_proxy.arm(blind)
    try:
        assert _logins(fm, email, password, LOGIN_LIMIT + 2) == ["ok"] * (LOGIN_LIMIT + 2)
        assert blind.sprung.is_set()
    finally:
        fm.redis_proxy.release(blind)
    _limiter_holds(fm, email, password)

    _configure(fm, fail_open=False)
    try:
        blind = fm.redis_proxy.arm(Trap(blind.matches, hold="request", once=False))
        try:
            assert _logins(fm, email, password, 2) == [SHAPED_503] * 2
        finally:
            fm.redis_proxy.release(blind)
        _limiter_holds(fm, email, password)
    finally:
        _configure(fm, fail_open=True)
