"""A rolling deploy's two mixed states, each run as a whole mesh and walked by a client.

While a release rolls out, the previous release's processes keep serving on the schema the new
release migrated to (expand migrations only, `meshkit.migrate --expand-only`); and the new
release must work before its contract migrations ran. So:
- the previous release (the code just before the newest migration was added, checked out from
  git) runs against this checkout's expand schema, behind an Envoy routing its own contracts;
- this checkout's services run against the same expand schema (below any trailing contract step).
Each walk registers, signs in, browses, searches, streams audio, reports playback, edits a
playlist and the library, and asks for recommendations: every answer must be a success.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devdata import demo
from meshctl import datatier, mesh
from meshctl.processes import ProcessTable
from meshkit import migrate
from meshkit.config import PROJECT_ROOT
from meshkit.kafka import ensure_topics
from tests.support import fresh_loopback_address

pytestmark = pytest.mark.e2e


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def previous_release() -> str:
    """The commit before the newest one that added a migration: the code that ran before that
    schema change (CI's clone has the history: `make buf-breaking` needs it too)."""
    newest = git("log", "-1", "--format=%H", "--", *(f"{s}/migrations/versions" for s in migrate.SERVICES))
    assert newest, "no commit adds a migration"
    return git("rev-parse", f"{newest}^")


def checkout(commit: str, into: Path) -> Path:
    """The tree of `commit` (what `git archive` exports, generated code included) under `into`."""
    archive = into / "release.tar"
    done = subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=PROJECT_ROOT, timeout=120
    )
    assert done.returncode == 0, f"git archive {commit} failed"
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def serves_internal_ports(tree: Path) -> bool:
    """Whether that release's services listen on an internal port beside their public one."""
    return "internal_port" in (tree / "meshkit" / "services.py").read_text()


def expand_schema(database_url: str) -> dict[str, str]:
    """This checkout's schema up to each service's expand head; returns the revisions."""
    heads = {service: migrate.expand_head(service) for service in migrate.SERVICES}
    for service, revision in heads.items():
        migrate.upgrade(service, database_url, revision)
    return heads


Starter = Callable[[Path], mesh.Mesh]


@pytest.fixture
def start_mixed(tmp_path: Path, pg_dir: Path, procs: ProcessTable) -> Iterator[Starter]:
    """Starts a mesh on the expand schema whose services come from a given tree, with the demo data,
    a database and a broker of its own (its consumer groups must not join the suite's mesh's) and a
    Redis database of its own; everything it started is stopped and dropped afterwards."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    table = ProcessTable(run_dir)
    name = f"spotify_rolling_{uuid.uuid4().hex[:8]}"
    server: list[str] = []

    def start(source: Path) -> mesh.Mesh:
        url = datatier.start_postgres(pg_dir, procs, name)
        server.append(datatier.with_database(url, "postgres"))
        expand_schema(url)
        kafka = datatier.start_kafka(run_dir, table, datatier.free_port())
        ensure_topics(kafka)
        redis_url = datatier.start_redis(run_dir, table, db=2)
        layout = mesh.free_layout(run_dir)
        if not serves_internal_ports(source):
            # A release from before internal ports serves every RPC on its one port: during the
            # roll-out the mesh's *_ADDR settings still name those ports (docs/runbook.md, Upgrades).
            layout = dataclasses.replace(layout, internal_ports={})
        running = mesh.Mesh(layout, url, redis_url, kafka)
        demo.load_if_empty(url)
        demo.load_audio(
            url, layout.storage_root, count=2, workers=1, seconds=6.0, public_base_url=running.envoy_url
        )
        mesh.start_services(running, table, source=source)
        mesh.wait_healthy(running, table)
        mesh.start_envoy(running, table, descriptor=source / "gen" / "descriptor.binpb")
        mesh.build_recommendations(running)  # this checkout's batch job; the running rec_svc loads its build
        return running

    try:
        yield start
    finally:
        mesh.stop_all(table)
        for url in server:
            datatier.drop_database(url, name)


def walk(running: mesh.Mesh) -> None:
    """A listener's session through Envoy: every step must succeed."""
    transport = httpx.HTTPTransport(local_address=fresh_loopback_address())  # a login budget of its own
    with httpx.Client(base_url=running.envoy_url, timeout=30, transport=transport) as client:
        email, password = f"rolling-{uuid.uuid4().hex[:10]}@example.com", "rolling-password"
        registered = client.post(
            "/api/auth/register", json={"email": email, "password": password, "display_name": "Rolling"}
        )
        assert registered.status_code == 200, registered.text
        login = client.post("/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        client.headers["authorization"] = f"Bearer {login.json()['access_token']}"

        def ok(reply: httpx.Response, *codes: int) -> dict:
            assert reply.status_code in (codes or (200,)), (reply.request.url, reply.status_code, reply.text)
            return reply.json() if reply.content else {}

        me = ok(client.get("/v1/me"))
        track = ok(client.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}"))
        ok(client.get(f"/v1/albums/{track['album']['id']}"))
        ok(client.get(f"/v1/artists/{track['artists'][0]['id']}/top-tracks"))
        found = ok(client.get("/v1/search", params={"q": track["name"], "type": "track"}))
        assert demo.DEMO_TRACK_ID in {t["id"] for t in found["tracks"]["items"]}, found

        stream = ok(client.get("/api/playback/stream", params={"track_id": demo.DEMO_TRACK_ID}))
        audio = httpx.get(stream["url"], headers={"range": "bytes=0-4095"}, timeout=30)
        assert audio.status_code == 206 and audio.content[:4] == b"OggS", audio.status_code
        key = f"rolling-{uuid.uuid4().hex}"
        common = {"idempotency_key": key, "track_id": demo.DEMO_TRACK_ID, "device_type": "web"}
        ok(client.post("/api/playback/events", json={"events": [{**common, "event": "start"}]}))

        playlist = ok(client.post("/v1/me/playlists", json={"name": "Rolling deploy"}), 200, 201)
        ok(client.post(f"/v1/playlists/{playlist['id']}/items", json={"uris": [track["uri"]]}), 200, 201)
        items = ok(client.get(f"/v1/playlists/{playlist['id']}/items"))
        assert [i["track"]["id"] for i in items["items"]] == [demo.DEMO_TRACK_ID], items
        ok(client.put("/v1/me/library", params={"uris": track["uri"]}))
        saved = ok(client.get("/v1/me/tracks"))
        assert [i["track"]["id"] for i in saved["items"]] == [demo.DEMO_TRACK_ID], saved

        recommended = ok(client.get("/v1/recommendations", params={"seed_tracks": demo.DEMO_TRACK_ID}))
        assert recommended["tracks"], recommended
        assert me["id"]


def test_the_previous_release_runs_on_this_schema(tmp_path: Path, start_mixed: Starter) -> None:
    previous = checkout(previous_release(), tmp_path)
    running = start_mixed(previous)
    # The services run that tree's code, not this checkout's.
    for replica in running.layout.all_replicas():
        started = ProcessTable(running.layout.run_dir).get(replica.name)
        assert started is not None and Path(f"/proc/{started.pid}/cwd").resolve() == previous.resolve()
        environ = dict(
            line.split("=", 1)
            for line in Path(f"/proc/{started.pid}/environ").read_text().split("\0")
            if "=" in line
        )
        assert environ["PYTHONPATH"].split(":")[0] == str(previous / "gen"), environ.get("PYTHONPATH")
    walk(running)


def test_this_release_runs_before_its_contract_step(start_mixed: Starter) -> None:
    walk(start_mixed(PROJECT_ROOT))
