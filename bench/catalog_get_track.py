"""GET /v1/tracks/{id} through Envoy (ext_authz + transcoder) vs GetTrack straight to catalog_svc.

    .venv/bin/python -m bench.catalog_get_track              # starts a private mesh (own ports and database)
    .venv/bin/python -m bench.catalog_get_track --running    # uses the mesh `make up` started
    .venv/bin/python -m bench.catalog_get_track --seconds 10 --concurrency 1 32

Requests cycle through the demo catalog's tracks (600; their ids come from devdata.demo, which
loaded them into every mesh), so every one is a real lookup: the track row with its album and
artists from PostgreSQL, built into Spotify's track object. Through Envoy each request also
costs one ext_authz Check in auth_svc (a Redis round trip), whose CPU is printed beside
catalog_svc's and Envoy's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools

import aiohttp
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from bench.edge_vs_direct import Result, arguments, closed_loop, login, mesh_processes, table, target_mesh
from devdata import demo
from meshctl import mesh
from meshkit import ids
from meshkit.services import DEFAULT_PORTS

SERVICES = ("envoy", "catalog_svc", "auth_svc")


def track_ids() -> list[str]:
    """The demo catalog's track ids (in id order), as devdata loaded them into the mesh."""
    _, _, tracks = demo.catalog()
    return [ids.encode(t.id) for t in sorted(tracks, key=lambda t: t.id)]


async def bench(target: mesh.Mesh, token: str, tracks: list[str], args: argparse.Namespace) -> list[Result]:
    processes = mesh_processes(target, SERVICES)
    catalog_addr = f"127.0.0.1:{target.layout.ports.get('catalog_svc', DEFAULT_PORTS['catalog_svc'])}"
    results = []
    cycle = itertools.cycle(tracks)
    headers = {"authorization": f"Bearer {token}"}
    for concurrency in args.concurrency:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(target.envoy_url, connector=connector, headers=headers) as http:

            async def via_envoy(http: aiohttp.ClientSession = http) -> None:
                async with http.get(f"/v1/tracks/{next(cycle)}") as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(reply.status)

            name = "envoy JSON /v1/tracks/{id}"
            row = await closed_loop(name, concurrency, args.seconds, via_envoy, processes)
            results.append(row)

        async with aio.insecure_channel(catalog_addr) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)

            async def direct(stub: catalog_pb2_grpc.CatalogServiceStub = stub) -> None:
                await stub.GetTrack(catalog_pb2.GetTrackRequest(id=next(cycle)), timeout=10)

            row = await closed_loop("direct gRPC GetTrack", concurrency, args.seconds, direct, processes)
            results.append(row)
    return results


def main() -> None:
    args = arguments("python -m bench.catalog_get_track", __doc__.split("\n")[0])
    with contextlib.ExitStack() as stack:
        target = target_mesh(args, stack, "bench-get-track-")
        tracks = track_ids()
        token = login(target.envoy_url)["access_token"]
        results = asyncio.run(bench(target, token, tracks, args))
    print(table(results, SERVICES))


if __name__ == "__main__":
    main()
