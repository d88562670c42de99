"""Shared fixtures: real PostgreSQL, Redis and Kafka, and a whole mesh behind its own Envoy.

Each test run gets its own database (and its own broker and ports), so runs never collide
with each other or with a mesh started by `make up`.

Everything through Envoy needs a session except register, login, /healthz and /media/*:
- `demo_token`, `free_token`, `artist_token`, `admin_token`: bearer tokens of the demo accounts
  (one login each per run); send `{"authorization": f"Bearer {token}"}` as HTTP headers or as
  gRPC metadata `(("authorization", f"Bearer {token}"),)`.
- `login(email, password)` logs in and returns a token; `new_account()` registers a fresh user
  and returns (email, password, token), for tests that change a user or spend its rate limits
  (search is 60/min per user: a test doing many searches should use its own account).
- `envoy_client()` is an httpx client whose connections come from a fresh 127.x.y.z address.
  Envoy limits login/register to 5 per 15 minutes per client IP, so every login here uses its
  own address; a test about that limit gets an address no other test shares.

Skips: a test may be skipped only when the machine lacks a capability it needs, and the skip's
reason says so, starting with "needs " ("needs docker", "needs an NVIDIA GPU"). Every other skip
(a failed login, a service that is "not implemented yet", an import that failed, a bare
`@pytest.mark.skip`) and every `xfail` fails that test instead, so `make test` and CI fail: a
precondition that does not hold is a failure. The hooks below (from tests/skip_rule.py) enforce
it; tests/test_skip_rule.py holds them to it.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from meshctl import datatier, envoy_config, mesh
from meshctl.mesh import Mesh, envoy_overrides
from meshctl.processes import ProcessTable
from tests.skip_rule import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 (hooks)
from tests.support import fresh_loopback_address, until

# Processes started here may use the committed development keys (production refuses them).
os.environ.setdefault("MESH_ENV", "development")

# Suites that run alone, each on a mesh of its own, with their own option and make target.
ALONE = {
    # Processes killed and data servers restarted (make test-faults).
    "--faults": Path(__file__).parent / "faults",
    # Every JSON route fuzzed through Envoy, with the fuzz mesh's raised rate limits (make test-fuzz).
    "--fuzz": Path(__file__).parent / "fuzz",
    # The web player in a real browser, on a mesh whose signed URLs expire within a track (make test-web).
    "--web": Path(__file__).parent / "web",
}


# Replica loss, on a mesh of two processes per service (make test-replicas): beside every test of
# the default suite that runs against the mesh, each of which must pass with two replicas too.
REPLICAS = ("--replicas", Path(__file__).parent / "replicas")


def pytest_addoption(parser: pytest.Parser) -> None:
    for option, folder in ALONE.items():
        parser.addoption(
            option,
            action="store_true",
            help=f"run tests/{folder.name} alone, on a mesh of its own (make test-{folder.name})",
        )
    parser.addoption(
        REPLICAS[0],
        action="store_true",
        help="run tests/replicas and the tests that use the mesh, on MESH_REPLICAS processes per service",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --replicas, only the tests that run against the mesh: the others do not change with it."""
    if not config.getoption(REPLICAS[0]):
        return
    keep = [item for item in items if "running_mesh" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fault tests kill and restart the processes of their own mesh, and the fuzz tests need
    limits no other test may have: each suite runs alone, with its option, never beside the rest."""
    option, folder = REPLICAS
    if (collection_path == folder or folder in collection_path.parents) and not config.getoption(option):
        return True
    for option, folder in ALONE.items():
        inside = collection_path == folder or folder in collection_path.parents
        if config.getoption(option):
            return None if inside or collection_path in folder.parents else True
        if inside:
            return True
    return None


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def procs(run_dir: Path, pg_dir: Path) -> Iterator[ProcessTable]:
    # pg_dir is a parameter so that it is removed only after every process here has stopped.
    table = ProcessTable(run_dir)
    yield table
    mesh.stop_all(table)  # the supervisor first, so that nothing it watches comes back


@pytest.fixture(scope="session")
def pg_dir() -> Iterator[Path]:
    """Where a private PostgreSQL keeps its data when the machine has none.

    Not under pytest's basetemp: each pytest run re-chmods /tmp/pytest-of-<user> to 0700, which
    would lock the server's own (non-root) user out of its data directory mid-run.
    """
    path = Path(tempfile.mkdtemp(prefix="spotify-test-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_dir: Path, procs: ProcessTable) -> Iterator[str]:
    """A fresh, migrated database for this run, dropped at the end."""
    from meshkit.migrate import upgrade_all

    name = f"spotify_test_{uuid.uuid4().hex[:10]}"
    url = datatier.start_postgres(pg_dir, procs, name)
    upgrade_all(url)
    yield url
    datatier.drop_database(datatier.with_database(url, "postgres"), name)


@pytest.fixture
def database_engine(database_url: str) -> Iterator[sa.Engine]:
    """A synchronous engine on the test database, for arranging and reading rows around a call."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url(run_dir: Path, procs: ProcessTable) -> str:
    return datatier.start_redis(run_dir, procs, db=1)


@pytest.fixture(scope="session")
def kafka_bootstrap(run_dir: Path, procs: ProcessTable) -> str:
    """KAFKA_BOOTSTRAP when set, else a private tansu broker on a free port."""
    from meshkit.kafka import ensure_topics

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or datatier.start_kafka(
        run_dir, procs, datatier.free_port()
    )
    ensure_topics(bootstrap)
    return bootstrap


# Demo tracks (the demo track first) that get real audio through the ingest pipeline in tests.
DEMO_AUDIO_TRACKS = 4
DEMO_AUDIO_SECONDS = 6.0


@pytest.fixture(scope="session")
def envoy_port() -> int:
    return datatier.free_port()


@pytest.fixture(scope="session")
def demo_database_url(database_url: str, run_dir: Path, envoy_port: int) -> str:
    """The run's database with the demo data, and real audio for the first demo tracks.

    Every fixture that needs demo rows goes through this one, so the demo tracks look the same
    (audio, features, measured duration) whichever test runs first.
    """
    return load_demo(database_url, run_dir, envoy_port, tracks=DEMO_AUDIO_TRACKS, seconds=DEMO_AUDIO_SECONDS)


def load_demo(
    database_url: str, run_dir: Path, envoy_port: int, *, tracks: int, seconds: float, workers: int = 1
) -> str:
    """The demo data in `database_url`, with `seconds` of real audio on the first `tracks` demo
    tracks (a suite on a mesh of its own may want longer audio); returns the URL."""
    from devdata import demo

    demo.load_if_empty(database_url)
    demo.load_audio(
        database_url,
        run_dir / "objects",
        count=tracks,
        workers=workers,
        seconds=seconds,
        public_base_url=f"http://127.0.0.1:{envoy_port}",
    )
    return database_url


@pytest.fixture(scope="session")
def mesh_env() -> dict[str, str]:
    """Environment variables for the mesh's services (a suite's conftest may add its own)."""
    return {}


@pytest.fixture(scope="session")
def running_mesh(
    mesh_env: dict[str, str],
    run_dir: Path,
    procs: ProcessTable,
    demo_database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    envoy_port: int,
) -> mesh.Mesh:
    """Every service, the media origin and Envoy on free ports, with the demo data loaded; as many
    processes of each as MESH_REPLICAS says (`make test-replicas` runs the suite with two)."""
    layout = mesh.with_replicas(
        dataclasses.replace(mesh.free_layout(run_dir), envoy_port=envoy_port), mesh.replicas_from_env()
    )
    running = mesh.Mesh(layout, demo_database_url, redis_url, kafka_bootstrap)
    # Rate-limit counters of this run only: the test Redis may be shared with other runs, and the
    # demo users' ids are the same in every run.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTH_RATELIMIT_KEY_PREFIX", f"ratelimit-test-{uuid.uuid4().hex[:10]}")
        for name, value in mesh_env.items():
            patch.setenv(name, value)
        mesh.start_services(running, procs)
    mesh.wait_healthy(running, procs)
    mesh.start_envoy(running, procs)
    return running


@pytest.fixture
def loopback_address() -> str:
    """A client address of this test's own (per-IP rate limits, the audit log's actor_ip)."""
    return fresh_loopback_address()


@pytest.fixture(scope="session")
def envoy_client(running_mesh: mesh.Mesh) -> Iterator[Callable[..., httpx.Client]]:
    """A factory of httpx clients to Envoy, each from its own loopback address (or `address`)."""
    clients: list[httpx.Client] = []

    def make(address: str | None = None) -> httpx.Client:
        client = httpx.Client(
            base_url=running_mesh.envoy_url,
            transport=httpx.HTTPTransport(local_address=address or fresh_loopback_address()),
            timeout=10,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def login(envoy_client: Callable[..., httpx.Client]) -> Callable[[str, str], str]:
    """Log in through Envoy (from a fresh address) and return the bearer token."""

    def do_login(email: str, password: str) -> str:
        reply = envoy_client().post("/api/auth/login", json={"email": email, "password": password})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    return do_login


@pytest.fixture(scope="session")
def new_account(
    envoy_client: Callable[..., httpx.Client], login: Callable[[str, str], str]
) -> Callable[..., tuple[str, str, str]]:
    """Register a unique user through Envoy; returns (email, password, token)."""

    def register(display_name: str = "Test Listener") -> tuple[str, str, str]:
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = f"pw-{secrets.token_hex(8)}"
        reply = envoy_client().post(
            "/api/auth/register", json={"email": email, "password": password, "display_name": display_name}
        )
        assert reply.status_code == 200, reply.text
        return email, password, login(email, password)

    return register


@pytest.fixture(scope="session")
def grant_premium(envoy_client: Callable[..., httpx.Client], admin_token: str) -> Callable[[str], str]:
    """Make a user premium the way billing does (an account cannot grant itself premium); returns
    their user id. Their live sessions see the change at once."""

    def grant(token: str) -> str:
        http = envoy_client()
        user_id = str(http.get("/v1/me", headers={"authorization": f"Bearer {token}"}).json()["id"])
        reply = http.put(
            f"/api/admin/users/{user_id}/roles",
            json={"roles": ["ROLE_USER", "ROLE_PREMIUM"]},
            headers={"authorization": f"Bearer {admin_token}"},
        )
        assert reply.status_code == 200, reply.text
        return user_id

    return grant


@pytest.fixture(scope="session")
def demo_token(login: Callable[[str, str], str]) -> str:
    return login("demo@example.com", "demo-password")


@pytest.fixture(scope="session")
def free_token(login: Callable[[str, str], str]) -> str:
    return login("free@example.com", "free-password")


@pytest.fixture(scope="session")
def artist_token(login: Callable[[str, str], str]) -> str:
    return login("artist@example.com", "artist-password")


@pytest.fixture(scope="session")
def admin_token(login: Callable[[str, str], str]) -> str:
    return login("admin@example.com", "admin-password")


@pytest.fixture(scope="session")
def tls_edge(running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    """A second Envoy in front of the test mesh with production's TLS settings and a throwaway
    certificate: (https://127.0.0.1:<port>, the certificate clients trust)."""
    home = tmp_path_factory.mktemp("tls-edge")
    tls = envoy_config.throwaway_certificate(home)
    port = datatier.free_port()
    overrides = {
        **envoy_overrides(running_mesh),
        "listen_port": port,
        "admin_port": datatier.free_port(),
        "stats_listen": "",
        "tracing_collector": "",
        "access_log_path": str(home / "access.log"),
        "tls": tls,
    }
    config = envoy_config.write("local", home / "envoy.yaml", overrides)
    log = (home / "envoy.log").open("wb")
    proc = subprocess.Popen(
        [envoy_config.envoy_binary(), "-c", str(config), "--disable-hot-restart", "--base-id", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    certificate = Path(tls["cert_chain"]).read_bytes()
    url = f"https://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/healthz", verify=False, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        until(ready, "the TLS edge to answer", 30, interval=0.2)
        yield url, certificate
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
