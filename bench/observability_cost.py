"""CPU per request of metrics, logs and tracing: GET /v1/tracks/{id} through Envoy, on vs off.

    .venv/bin/python -m bench.observability_cost                       # 5 private meshes, side by side
    .venv/bin/python -m bench.observability_cost --seconds 10 --concurrency 8

One run starts five meshes that differ only in what they observe, side by side, and drives the
same closed loop through each in turn, round after round (medians are printed):
  none            METRICS_ENABLED=false, LOG_LEVEL=WARNING (no per-request line), no tracing
  metrics         + the request histograms (the exporter is up; nothing scrapes it)
  metrics+logs    + LOG_LEVEL=INFO: one JSON line per RPC in every service
  all 1%          + OTEL_EXPORTER_OTLP_ENDPOINT, TRACE_SAMPLE_RATIO=0.01 (k8s's ratio): every
                  process is instrumented, Envoy keeps 1 % of the traces and the services follow
  all             the same, keeping every trace: Envoy and every service export each request's
                  spans to an OTLP receiver in this process that drops what it gets
It prints each process's CPU per request (Envoy, catalog_svc, auth_svc, which answers ext_authz,
the rate limit included) and each configuration's total as a ratio to `none`, measured in the
same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import statistics
from collections.abc import Iterator
from concurrent import futures

import aiohttp
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench.catalog_get_track import track_ids
from bench.edge_vs_direct import Result, closed_loop, login, mesh_processes
from meshctl import datatier, mesh

SERVICES = ("envoy", "catalog_svc", "auth_svc")


class _Drop(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP receiver that takes every export and keeps nothing."""

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Drop(), server)
    port = datatier.free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """`values` in os.environ while a mesh starts (its processes inherit them; None unsets), then
    as before."""
    before = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def configurations(otlp: str) -> list[tuple[str, dict[str, str | None]]]:
    off: dict[str, str | None] = {
        "METRICS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "OTEL_EXPORTER_OTLP_ENDPOINT": None,
        "TRACE_SAMPLE_RATIO": None,
    }
    on: dict[str, str | None] = {
        "METRICS_ENABLED": "true",
        "LOG_LEVEL": "INFO",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "TRACE_SAMPLE_RATIO": "1",
    }
    return [
        ("none", off),
        ("metrics", {**off, "METRICS_ENABLED": "true"}),
        ("metrics+logs", {**off, "METRICS_ENABLED": "true", "LOG_LEVEL": "INFO"}),
        ("all 1%", {**on, "TRACE_SAMPLE_RATIO": "0.01"}),
        ("all", on),
    ]


async def drive(target: mesh.Mesh, token: str, name: str, concurrency: int, seconds: float) -> Result:
    cycle = itertools.cycle(track_ids())
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(target.envoy_url, connector=connector, headers=headers) as http:

        async def get_track() -> None:
            async with http.get(f"/v1/tracks/{next(cycle)}") as reply:
                await reply.read()
                if reply.status != 200:
                    raise RuntimeError(reply.status)

        return await closed_loop(name, concurrency, seconds, get_track, mesh_processes(target, SERVICES))


def report(rows: dict[str, list[Result]]) -> str:
    """Per configuration, the median over rounds of each process's CPU per request."""
    heads = "".join(f" {s + ' ms/req':>16}" for s in SERVICES)
    lines = [f"{'observing':<14} {'req/s':>8} {'errors':>6}" + heads + f" {'total':>9} {'vs none':>8}"]

    def median_cpu(results: list[Result], service: str) -> float:
        return statistics.median(r.cpu_ms_per_request(service) for r in results)

    baseline = sum(median_cpu(rows["none"], s) for s in SERVICES)
    for name, results in rows.items():
        per = [median_cpu(results, s) for s in SERVICES]
        total = sum(per)
        rps, errors = statistics.median(r.rps for r in results), sum(r.errors for r in results)
        lines.append(
            f"{name:<14} {rps:>8.0f} {errors:>6}"
            + "".join(f" {value:>16.3f}" for value in per)
            + f" {total:>9.3f} {total / baseline:>8.2f}"
        )
    lines.append(
        "\nEnvoy's configuration is the same in the first three rows: its spread is the machine's noise."
    )
    lines.append(f"machine load average after the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.observability_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured seconds per configuration and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the meshes (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        otlp = stack.enter_context(receiver())
        meshes = {}
        for name, values in configurations(otlp):
            print(f"starting a private mesh observing {name} ...", flush=True)
            prefix = "bench-obs-" + re.sub(r"[^a-z0-9]+", "-", name) + "-"
            with environment(values):
                meshes[name] = stack.enter_context(mesh.private_mesh(prefix))
        tokens = {name: login(target.envoy_url)["access_token"] for name, target in meshes.items()}
        rows: dict[str, list[Result]] = {name: [] for name in meshes}
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} of {args.rounds} ...", flush=True)
            for name, target in meshes.items():  # interleaved, so drift in the machine hits all alike
                rows[name].append(
                    asyncio.run(drive(target, tokens[name], name, args.concurrency, args.seconds))
                )
    print(report(rows))


if __name__ == "__main__":
    main()
