"""GET /v1/me through Envoy (ext_authz + transcoder) vs GetMe straight to auth_svc.

    .venv/bin/python -m bench.auth_me                  # starts a private mesh (own ports and database)
    .venv/bin/python -m bench.auth_me --running        # uses the mesh `make up` started
    .venv/bin/python -m bench.auth_me --seconds 10 --concurrency 1 32

Through Envoy every request is one ext_authz Check (a Redis round trip in auth_svc) plus the
transcoded GetMe (one PostgreSQL query); direct, it is GetMe alone with the identity metadata an
internal caller sends. /v1/me is in no rate-limit category, so ext_authz counts nothing for it.
The client shares the machine's cores with Envoy, auth_svc, Redis and
PostgreSQL: its own CPU use is printed, since on 2 cores it is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import aiohttp
from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc

from bench.edge_vs_direct import Result, arguments, closed_loop, login, mesh_processes, table, target_mesh
from devdata import demo
from meshctl import mesh
from meshkit.services import DEFAULT_PORTS

EMAIL, PASSWORD = "demo@example.com", "demo-password"
SERVICES = ("envoy", "auth_svc")


async def bench(
    target: mesh.Mesh, auth_addr: str, token: str, user_id: str, args: argparse.Namespace
) -> list[Result]:
    envoy_url = target.envoy_url
    processes = mesh_processes(target, SERVICES)
    results = []
    headers = {"authorization": f"Bearer {token}"}
    metadata = (("x-user-id", user_id), ("x-user-roles", "premium,user"), ("x-user-product", "premium"))
    for concurrency in args.concurrency:
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        async with aiohttp.ClientSession(base_url=envoy_url, connector=connector, headers=headers) as http:

            async def via_envoy(http: aiohttp.ClientSession = http) -> None:
                async with http.get("/v1/me") as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(reply.status)

            row = await closed_loop("envoy JSON /v1/me", concurrency, args.seconds, via_envoy, processes)
            results.append(row)

        async with aio.insecure_channel(auth_addr) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)

            async def direct(stub: auth_pb2_grpc.AuthServiceStub = stub) -> None:
                await stub.GetMe(auth_pb2.GetMeRequest(), metadata=metadata, timeout=10)

            row = await closed_loop("direct gRPC GetMe", concurrency, args.seconds, direct, processes)
            results.append(row)
    return results


def main() -> None:
    args = arguments("python -m bench.auth_me", __doc__.split("\n")[0])
    with contextlib.ExitStack() as stack:
        target = target_mesh(args, stack, "bench-auth-")
        auth_addr = f"127.0.0.1:{target.layout.ports.get('auth_svc', DEFAULT_PORTS['auth_svc'])}"
        body = login(target.envoy_url, EMAIL, PASSWORD)
        token, user_id = body["access_token"], body["user"]["id"]
        assert user_id == demo.DEMO_USER_ID
        results = asyncio.run(bench(target, auth_addr, token, user_id, args))
    print(table(results, SERVICES))
    p99 = {r.concurrency: r.pct(0.99) for r in results if r.name.startswith("envoy")}
    direct_p99 = {r.concurrency: r.pct(0.99) for r in results if r.name.startswith("direct")}
    best = max(r.rps for r in results if r.name.startswith("envoy"))
    print(
        f"goal: >= 1500 req/s through Envoy (best here {best:.0f}); p99 <= 3x direct "
        + ", ".join(f"(c={c}: {p99[c] / direct_p99[c]:.2f}x)" for c in p99)
    )


if __name__ == "__main__":
    main()
