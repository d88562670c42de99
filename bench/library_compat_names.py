"""What serving Spotify's deprecated names beside the new ones costs on a full playlist page.

    .venv/bin/python -m bench.library_compat_names            # starts a private mesh (own ports and database)
    .venv/bin/python -m bench.library_compat_names --running  # uses the mesh `make up` started

A playlist's entries carry their track under `item` and again under the deprecated `track`, and the
playlist object carries its items page under `items` and again under the deprecated `tracks`
(Spotify still sends both). This bench makes one 100-item playlist through Envoy and reads it back:

- bytes: the JSON bodies of `GET /v1/playlists/{id}/items?limit=100` and `GET /v1/playlists/{id}`
  as Envoy sends them ("after"), and the same bodies without the deprecated names ("before": the
  real body with those keys taken out, re-printed the way Envoy prints; the re-print of the whole
  body is checked to give Envoy's byte count back). The gRPC replies of ListPlaylistItems and
  GetPlaylist likewise, on the wire.
- time: the work those bytes add per page, on the real replies: building the page from its track
  objects as library_svc does (one name, or both), encoding the gRPC reply (library_svc) and
  printing it as JSON (Envoy's transcoder does this in C++; Python's json_format stands in for it,
  so the ratio is the figure to read, not the microseconds). Medians of `--repeat` rounds,
  before and after taken in turn.
- for scale: the p50 of the whole GET through Envoy, which already includes both names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc import aio
from spotify.library.v1 import library_pb2, library_pb2_grpc

from bench.library_playlists import login_all, seed
from meshctl import mesh
from meshkit import ids

PAGE = 100


def compact(body: Any) -> bytes:
    """JSON the way Envoy's transcoder prints it here (no whitespace, UTF-8 as is)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def without_deprecated(body: dict[str, Any]) -> dict[str, Any]:
    """The body as it was before: no `tracks` on a playlist, no `track` on the entries of a page."""

    def entries(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k != "track"} for entry in found]

    out = {k: v for k, v in body.items() if k != "tracks"}
    page = out["items"]
    if isinstance(page, dict):  # a playlist: its items page
        out["items"] = {**page, "items": entries(page.get("items", []))}
    else:
        out["items"] = entries(page)
    return out


def copied(message: Message) -> Message:
    """A built copy, as library_svc holds its reply before encoding it (a parsed one encodes differently)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def cleared(message: Message) -> Message:
    """A copy of a reply without the deprecated fields (what library_svc sent before)."""
    copy = copied(message)
    if isinstance(copy, library_pb2.Playlist):
        copy.ClearField("tracks")
        entries = copy.items.items
    else:
        assert isinstance(copy, library_pb2.PlaylistItemPage)
        entries = copy.items
    for entry in entries:
        entry.ClearField("track")
    return copy


def rebuild(page: library_pb2.PlaylistItemPage, both: bool) -> library_pb2.PlaylistItemPage:
    """The page built from its parts as library_svc's objects builder does, with one name or both."""
    entries = []
    for entry in page.items:
        extra = {"track": entry.item} if both else {}
        entries.append(
            library_pb2.PlaylistItem(
                added_at=entry.added_at, added_by=entry.added_by, is_local=False, item=entry.item, **extra
            )
        )
    return library_pb2.PlaylistItemPage(
        href=page.href,
        limit=page.limit,
        next=page.next,
        offset=page.offset,
        previous=page.previous,
        total=page.total,
        next_page_token=page.next_page_token,
        items=entries,
    )


def to_json(message: Message) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
    )


def paired_us(before: Callable[[], object], after: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median µs of each, the two taken in turn so both see the same load on a shared machine."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for work, into in ((before, samples[0]), (after, samples[1])):
            started = time.perf_counter()
            work()
            into.append(time.perf_counter() - started)
    return statistics.median(samples[0]) * 1e6, statistics.median(samples[1]) * 1e6


async def p50_ms(http: httpx.AsyncClient, path: str, params: dict[str, int], count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        reply = await http.get(path, params=params)
        reply.raise_for_status()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def bench(target: mesh.Mesh, args: argparse.Namespace) -> None:
    track_ids, (owner,) = await asyncio.to_thread(seed, target.database_url, PAGE, 1)
    if not login_all(target.envoy_url, [owner]):
        raise SystemExit("the mesh answered no login: this bench reads through Envoy")
    headers = {"authorization": f"Bearer {owner.token}"}
    async with httpx.AsyncClient(base_url=target.envoy_url, headers=headers, timeout=30) as http:
        made = await http.post("/v1/me/playlists", json={"name": "bench compat names"})
        made.raise_for_status()
        playlist_id = str(made.json()["id"])
        added = await http.post(
            f"/v1/playlists/{playlist_id}/items", json={"uris": [ids.uri("track", t) for t in track_ids]}
        )
        added.raise_for_status()
        items_path, playlist_path = f"/v1/playlists/{playlist_id}/items", f"/v1/playlists/{playlist_id}"
        items_reply = await http.get(items_path, params={"limit": PAGE})
        playlist_reply = await http.get(playlist_path)
        items_reply.raise_for_status()
        playlist_reply.raise_for_status()
        latency = {
            "items": await p50_ms(http, items_path, {"limit": PAGE}, args.requests),
            "playlist": await p50_ms(http, playlist_path, {}, args.requests),
        }

    rows: list[tuple[str, float, float]] = []
    for name, reply in (("GET .../items?limit=100", items_reply), ("GET /v1/playlists/{id}", playlist_reply)):
        body = reply.json()
        reprinted = len(compact(body))
        if reprinted != len(reply.content):
            print(f"note: re-printing {name} gives {reprinted} bytes, Envoy sent {len(reply.content)}")
        rows.append((f"JSON bytes, {name}", len(compact(without_deprecated(body))), len(reply.content)))

    library_addr = f"127.0.0.1:{target.layout.internal_ports['library_svc']}"
    async with aio.insecure_channel(library_addr) as channel:
        stub = library_pb2_grpc.LibraryServiceStub(channel)
        page = await stub.ListPlaylistItems(
            library_pb2.ListPlaylistItemsRequest(id=playlist_id, limit=PAGE), metadata=owner.metadata
        )
        full = await stub.GetPlaylist(library_pb2.GetPlaylistRequest(id=playlist_id), metadata=owner.metadata)
    if len(page.items) != PAGE or any(e.track != e.item for e in page.items) or full.tracks != full.items:
        raise SystemExit("the replies do not carry both names with equal objects")

    old_page, old_full = cleared(page), cleared(full)
    new_page, new_full = copied(page), copied(full)
    rows += [
        ("gRPC bytes, ListPlaylistItems", old_page.ByteSize(), page.ByteSize()),
        ("gRPC bytes, GetPlaylist", old_full.ByteSize(), full.ByteSize()),
        (
            "µs build the 100-item page",
            *paired_us(lambda: rebuild(page, both=False), lambda: rebuild(page, both=True), args.repeat),
        ),
        (
            "µs encode ListPlaylistItems",
            *paired_us(old_page.SerializeToString, new_page.SerializeToString, args.repeat),
        ),
        (
            "µs encode GetPlaylist",
            *paired_us(old_full.SerializeToString, new_full.SerializeToString, args.repeat),
        ),
        (
            "µs JSON-print the items page",
            *paired_us(lambda: to_json(old_page), lambda: to_json(new_page), args.repeat),
        ),
        (
            "µs JSON-print the playlist",
            *paired_us(lambda: to_json(old_full), lambda: to_json(new_full), args.repeat),
        ),
    ]
    print(f"\nA {PAGE}-item playlist: without the deprecated names (before) and with them (after)")
    print(f"{'figure':<36} {'before':>10} {'after':>10} {'ratio':>6}")
    for name, before, after in rows:
        print(f"{name:<36} {before:>10.0f} {after:>10.0f} {after / before:>6.2f}")
    print(
        f"\nfor scale, the whole GET through Envoy now (p50 of {args.requests}): "
        f"items page {latency['items']:.2f} ms, playlist {latency['playlist']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.library_compat_names", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--running", action="store_true", help="use the mesh `make up` started")
    parser.add_argument(
        "--run-dir", type=Path, default=mesh.Layout().run_dir, help="with --running: its run dir"
    )
    parser.add_argument("--repeat", type=int, default=200, help="rounds of each in-process timing")
    parser.add_argument("--requests", type=int, default=50, help="GETs through Envoy for the p50")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.running:
            loaded = mesh.Mesh.load(args.run_dir)
            if loaded is None:
                raise SystemExit("no running mesh: `make up` first, or drop --running")
            target = loaded
        else:
            print("starting a private mesh ...", flush=True)
            target = stack.enter_context(mesh.private_mesh("bench-compat-"))
        asyncio.run(bench(target, args))


if __name__ == "__main__":
    main()
