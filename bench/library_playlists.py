"""Playlist writes under contention and deep item pages with catalog hydration.

    .venv/bin/python -m bench.library_playlists            # starts a private mesh (own ports and database)
    .venv/bin/python -m bench.library_playlists --running  # uses the mesh `make up` started
    .venv/bin/python -m bench.library_playlists --collaborators 20 --requests 50 --batch 10 --reads 400

1. Add items: `--collaborators` users (20) of one collaborative playlist each send `--requests`
   (50) add-items requests of `--batch` (10) new tracks, all at once: 20 x 50 x 10 = 10,000 items,
   the playlist maximum. Every writer of one playlist takes its row lock, so this measures the
   serialized write path (catalog existence check outside the lock, then SELECT ... FOR UPDATE,
   INSERT, version bump, commit). Run twice: through Envoy as JSON (each collaborator with its own
   session: ext_authz, the "library writes" rate limit of 100/min/user, the transcoder) and
   straight to library_svc over gRPC with the identity metadata an internal caller sends.
2. Read items: GET /v1/playlists/{id}/items?limit=100&offset=<random page> on the 10,000-item
   playlist, one client (latency) and 8 concurrent (throughput); every page is one PostgreSQL range
   scan plus two BatchGetTracks calls to catalog_svc (50 ids each, concurrent). Baselines from the
   same run: the same RPC straight to library_svc, and the two BatchGetTracks calls alone.
   library_svc keeps track objects for 60 s (LIBRARY_TRACK_CACHE_TTL_S), and the add phase has
   just resolved every track, so pages are served from that cache; --no-track-cache measures the
   path where every page calls catalog_svc.

The bench's own data goes in through the services' seed entry points, as the demo data does:
the tracks (one artist, one album) through `catalog_svc.seed.load_catalog`, the accounts (role
user, password hashed by auth_svc) through `auth_svc.seed.load_accounts`. Each playlist's
contents are checked after its add phase through ListPlaylistItems (every page read: the count,
the total and no item lost or doubled).

The client shares the machine's cores with Envoy, every service, Redis and PostgreSQL: its own
CPU use is printed, since on a small machine it is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from grpc import aio
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.library.v1 import library_pb2, library_pb2_grpc

from auth_svc.seed import SeedAccount, load_accounts
from catalog_svc.seed import SeedAlbum, SeedArtist, SeedTrack, load_catalog
from meshctl import mesh
from meshkit import ids
from meshkit.context import USER_ID_KEY, USER_ROLES_KEY

PASSWORD = "bench-password"
PAGE = 100


@dataclass
class Result:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0
    client_cpu_s: float = 0.0
    items: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Account:
    id: uuid.UUID
    email: str
    token: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((USER_ID_KEY, ids.encode(self.id)), (USER_ROLES_KEY, "user"))


def loopback() -> str:
    """An address of its own for each login (Envoy allows 5 logins per 15 minutes per client IP)."""
    return "127." + ".".join(str(1 + b % 254) for b in secrets.token_bytes(3))


def seed(database_url: str, tracks: int, users: int) -> tuple[list[uuid.UUID], list[Account]]:
    """Tracks in the catalog and accounts in auth, each written by its service's seed entry point."""
    artist_id, album_id = uuid.uuid4(), uuid.uuid4()
    track_ids = [uuid.uuid4() for _ in range(tracks)]
    accounts = [Account(uuid.uuid4(), f"bench-{secrets.token_hex(6)}@example.com") for _ in range(users)]
    artist = SeedArtist(
        id=artist_id,
        name="Bench Ensemble",
        genres=(),
        verified=False,
        follower_count=0,
        popularity=0,
        bio="",
    )
    album = SeedAlbum(
        id=album_id,
        artist_id=artist_id,
        title="Bench Tracks",
        release_date=dt.date(2024, 1, 1),
        album_type="album",
        total_tracks=tracks,
        label="",
    )
    rows = [
        SeedTrack(
            id=t,
            album_id=album_id,
            artist_id=artist_id,
            title=f"Bench {i}",
            duration_ms=180_000,
            track_number=i + 1,
            explicit=False,
            popularity=0,
        )
        for i, t in enumerate(track_ids)
    ]
    load_catalog(database_url, [artist], [album], rows, only_if_empty=False)
    load_accounts(
        database_url,
        [SeedAccount(a.id, a.email, PASSWORD, display_name=a.email[:12], roles=("user",)) for a in accounts],
    )
    return track_ids, accounts


def login_all(envoy_url: str, accounts: list[Account]) -> bool:
    """Sessions for every account; False when the mesh has no login yet (then only gRPC is measured)."""
    for account in accounts:
        transport = httpx.HTTPTransport(local_address=loopback())
        with httpx.Client(base_url=envoy_url, transport=transport, timeout=10) as http:
            reply = http.post("/api/auth/login", json={"email": account.email, "password": PASSWORD})
        if reply.status_code != 200:
            print(f"login answered {reply.status_code}: measuring direct gRPC only")
            return False
        account.token = reply.json()["access_token"]
    return True


async def measured(name: str, calls: list[Callable[[], Awaitable[int]]], concurrency: int) -> Result:
    """Run `calls` with `concurrency` workers; each call returns the number of items it handled."""
    result = Result(name)
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            try:
                result.items += await call()
            except Exception as exc:  # counted, and the first one shown: a benchmark must not hide errors
                if not result.errors:
                    print(f"  {name}: {type(exc).__name__}: {str(exc)[:200]}")
                result.errors += 1
                continue
            result.latencies_s.append(time.perf_counter() - started)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s, result.client_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return result


async def add_phase(
    name: str,
    create: Callable[[], Awaitable[str]],
    add: Callable[[Account, str, list[uuid.UUID]], Awaitable[None]],
    collaborators: list[Account],
    track_ids: list[uuid.UUID],
    args: argparse.Namespace,
) -> tuple[Result, str]:
    """Every collaborator sends its requests in order; all collaborators at once."""
    playlist_id = await create()
    per_user = args.requests * args.batch
    result = Result(name)
    cpu0, t0 = time.process_time(), time.perf_counter()

    async def contribute(index: int, account: Account) -> None:
        mine = track_ids[index * per_user : (index + 1) * per_user]
        for start in range(0, per_user, args.batch):
            started = time.perf_counter()
            try:
                await add(account, playlist_id, mine[start : start + args.batch])
            except Exception as exc:
                if not result.errors:
                    print(f"  {name}: {type(exc).__name__}: {str(exc)[:200]}")
                result.errors += 1
                continue
            result.latencies_s.append(time.perf_counter() - started)
            result.items += args.batch

    await asyncio.gather(*(contribute(i, a) for i, a in enumerate(collaborators)))
    result.elapsed_s, result.client_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return result, playlist_id


async def check_items(
    stub: library_pb2_grpc.LibraryServiceStub, owner: Account, playlist_id: str, expected: int
) -> str:
    """Every page of the playlist through ListPlaylistItems: as many items as were added, each once."""
    seen: list[str] = []
    total = -1
    for offset in range(0, max(expected, 1), PAGE):
        page = await stub.ListPlaylistItems(
            library_pb2.ListPlaylistItemsRequest(id=playlist_id, limit=PAGE, offset=offset),
            metadata=owner.metadata,
            timeout=30,
        )
        total = page.total
        seen += [entry.item.id for entry in page.items]
    distinct = len(set(seen))
    ok = (len(seen), total, distinct) == (expected, expected, expected)
    return (
        f"{len(seen)} items read, total {total}, {distinct} distinct: {'complete' if ok else 'NOT COMPLETE'}"
    )


async def bench(target: mesh.Mesh, args: argparse.Namespace) -> None:
    n_users = args.collaborators + 1
    total = args.collaborators * args.requests * args.batch
    # Off the event loop: auth's seed runs its password hasher on a loop of its own.
    track_ids, accounts = await asyncio.to_thread(seed, target.database_url, total, n_users)
    owner, collaborators = accounts[0], accounts[1:]
    via_envoy = login_all(target.envoy_url, accounts)
    library_addr = f"127.0.0.1:{target.layout.internal_ports['library_svc']}"
    catalog_addr = f"127.0.0.1:{target.layout.internal_ports['catalog_svc']}"
    results: list[Result] = []
    playlists: dict[str, str] = {}

    async with aio.insecure_channel(library_addr) as channel:
        stub = library_pb2_grpc.LibraryServiceStub(channel)

        async def grpc_create() -> str:
            made = await stub.CreatePlaylist(
                library_pb2.CreatePlaylistRequest(name="bench (gRPC)", collaborative=True),
                metadata=owner.metadata,
            )
            for c in collaborators:
                await stub.AddPlaylistCollaborator(
                    library_pb2.AddPlaylistCollaboratorRequest(playlist_id=made.id, user_id=ids.encode(c.id)),
                    metadata=owner.metadata,
                )
            return made.id

        async def grpc_add(account: Account, playlist_id: str, batch: list[uuid.UUID]) -> None:
            await stub.AddPlaylistItems(
                library_pb2.AddPlaylistItemsRequest(
                    id=playlist_id, uris=[ids.uri("track", t) for t in batch]
                ),
                metadata=account.metadata,
                timeout=60,
            )

        if via_envoy:
            clients = {
                a.id: httpx.AsyncClient(
                    base_url=target.envoy_url, headers={"authorization": f"Bearer {a.token}"}, timeout=60
                )
                for a in accounts
            }
            try:

                async def envoy_create() -> str:
                    http = clients[owner.id]
                    reply = await http.post(
                        "/v1/me/playlists", json={"name": "bench (JSON)", "collaborative": True}
                    )
                    reply.raise_for_status()
                    playlist_id = str(reply.json()["id"])
                    for c in collaborators:
                        added = await http.post(
                            f"/api/library/playlists/{playlist_id}/collaborators",
                            json={"user_id": ids.encode(c.id)},
                        )
                        added.raise_for_status()
                    return playlist_id

                async def envoy_add(account: Account, playlist_id: str, batch: list[uuid.UUID]) -> None:
                    reply = await clients[account.id].post(
                        f"/v1/playlists/{playlist_id}/items",
                        json={"uris": [ids.uri("track", t) for t in batch]},
                    )
                    if reply.status_code != 200:
                        raise RuntimeError(f"{reply.status_code} {reply.text[:200]}")

                print("adding through Envoy (JSON) ...", flush=True)
                result, playlists["envoy"] = await add_phase(
                    "add via Envoy JSON", envoy_create, envoy_add, collaborators, track_ids, args
                )
                results.append(result)
                checked = await check_items(stub, owner, playlists["envoy"], result.items)
                print("  " + checked, flush=True)
            finally:
                for http in clients.values():
                    await http.aclose()

        print("adding straight to library_svc (gRPC) ...", flush=True)
        result, playlists["grpc"] = await add_phase(
            "add direct gRPC", grpc_create, grpc_add, collaborators, track_ids, args
        )
        results.append(result)
        print("  " + await check_items(stub, owner, playlists["grpc"], result.items), flush=True)
        print_adds(results, args)

        read_id = playlists.get("envoy") or playlists["grpc"]
        pages = max(1, total // PAGE)
        rng = random.Random(7)
        offsets = [rng.randrange(pages) * PAGE for _ in range(args.reads)]
        reads: list[Result] = []

        async def grpc_page(offset: int) -> int:
            page = await stub.ListPlaylistItems(
                library_pb2.ListPlaylistItemsRequest(id=read_id, limit=PAGE, offset=offset),
                metadata=owner.metadata,
                timeout=10,
            )
            assert len(page.items) == PAGE and page.items[0].item.id
            return len(page.items)

        async with aio.insecure_channel(catalog_addr) as catalog_channel:
            catalog_stub = catalog_pb2_grpc.CatalogServiceStub(catalog_channel)
            keys = [ids.encode(t) for t in track_ids]

            async def hydration_only(offset: int) -> int:
                halves = [",".join(keys[offset + i : offset + i + 50]) for i in (0, 50)]
                replies = await asyncio.gather(
                    *(
                        catalog_stub.BatchGetTracks(catalog_pb2.BatchGetTracksRequest(ids=h), timeout=10)
                        for h in halves
                    )
                )
                return sum(len(r.tracks) for r in replies)

            for concurrency in (1, 8):
                if via_envoy:
                    async with httpx.AsyncClient(
                        base_url=target.envoy_url,
                        headers={"authorization": f"Bearer {owner.token}"},
                        timeout=10,
                    ) as http:

                        async def envoy_page(offset: int, http: httpx.AsyncClient = http) -> int:
                            reply = await http.get(
                                f"/v1/playlists/{read_id}/items", params={"limit": PAGE, "offset": offset}
                            )
                            if reply.status_code != 200:
                                raise RuntimeError(f"{reply.status_code} {reply.text[:200]}")
                            return len(reply.json()["items"])

                        await measured("warm-up", [partial(envoy_page, o) for o in offsets[:20]], concurrency)
                        reads.append(
                            await measured(
                                f"GET items via Envoy c={concurrency}",
                                [partial(envoy_page, o) for o in offsets],
                                concurrency,
                            )
                        )
                await measured("warm-up", [partial(grpc_page, o) for o in offsets[:20]], concurrency)
                reads.append(
                    await measured(
                        f"ListPlaylistItems gRPC c={concurrency}",
                        [partial(grpc_page, o) for o in offsets],
                        concurrency,
                    )
                )
                reads.append(
                    await measured(
                        f"2x BatchGetTracks c={concurrency}",
                        [partial(hydration_only, o) for o in offsets],
                        concurrency,
                    )
                )
        print_reads(reads, via_envoy)


def print_adds(results: list[Result], args: argparse.Namespace) -> None:
    shape = f"{args.collaborators} collaborators x {args.requests} requests x {args.batch} tracks"
    print(f"\nadd items: {shape}, one playlist")
    print(f"{'path':<22} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'items/s':>8} {'errors':>6} {'cpu':>5}")
    for r in results:
        print(
            f"{r.name:<22} {r.pct(0.5):>8.1f} {r.pct(0.99):>8.1f} {r.rps:>7.0f} "
            f"{r.items / r.elapsed_s:>8.0f} {r.errors:>6} {r.client_cpu_s / r.elapsed_s:>5.0%}"
        )
    if len(results) == 2:
        envoy, direct = results
        p50, p99 = envoy.pct(0.5) / direct.pct(0.5), envoy.pct(0.99) / direct.pct(0.99)
        print(f"{'ratio envoy/direct':<22} {p50:>8.2f} {p99:>8.2f}")
    print("(cpu: the benchmark client's own CPU use, on the same cores as the mesh)")


def print_reads(reads: list[Result], via_envoy: bool) -> None:
    print(f"\nGET items (limit={PAGE}, random offsets) on a 10,000-item playlist, with catalog hydration")
    print(f"{'path':<30} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7} {'errors':>6} {'cpu':>5}")
    for r in reads:
        print(
            f"{r.name:<30} {r.pct(0.5):>8.2f} {r.pct(0.95):>8.2f} {r.pct(0.99):>8.2f} {r.rps:>7.0f} "
            f"{r.errors:>6} {r.client_cpu_s / r.elapsed_s:>5.0%}"
        )
    headline = next((r for r in reads if r.name.startswith("GET items via Envoy c=1")), None)
    if headline is None:
        headline = next(r for r in reads if r.name.startswith("ListPlaylistItems gRPC c=1"))
        print("\n(no login on this mesh: the figure below is direct gRPC, not through Envoy)")
    verdict = "met" if headline.pct(0.95) < 30 else "NOT met"
    print(f"\ngoal: p95 < 30 ms ({headline.name}: {headline.pct(0.95):.2f} ms) -> {verdict}")
    if not via_envoy:
        print("Envoy was not measured: the mesh answered no login")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.library_playlists", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--running", action="store_true", help="use the mesh `make up` started")
    parser.add_argument(
        "--run-dir", type=Path, default=mesh.Layout().run_dir, help="with --running: its run dir"
    )
    parser.add_argument("--collaborators", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="add-items requests per collaborator")
    parser.add_argument("--batch", type=int, default=10, help="tracks per add-items request")
    parser.add_argument("--reads", type=int, default=400, help="GET items requests per row")
    parser.add_argument(
        "--no-track-cache",
        action="store_true",
        help="private mesh only: library_svc without its track cache (every page hydrates from catalog_svc)",
    )
    args = parser.parse_args()
    if args.no_track_cache:
        if args.running:
            parser.error("--no-track-cache needs a private mesh (the running one has its own settings)")
        os.environ["LIBRARY_TRACK_CACHE_TTL_S"] = "0"  # the services inherit the environment
    if args.collaborators * args.requests * args.batch > 10_000:
        parser.error("collaborators x requests x batch must stay within a playlist's 10,000 items")

    with contextlib.ExitStack() as stack:
        if args.running:
            loaded = mesh.Mesh.load(args.run_dir)
            if loaded is None:
                raise SystemExit("no running mesh: `make up` first, or drop --running")
            target = loaded
        else:
            print("starting a private mesh ...", flush=True)
            target = stack.enter_context(mesh.private_mesh("bench-library-"))
        asyncio.run(bench(target, args))


if __name__ == "__main__":
    main()
