"""The SDK across a service's crash: library_svc killed (SIGKILL) mid-session and restarted by the
supervisor. The client is not rebuilt: its next calls succeed once the service is back. While it
is down, a read and a keyed write are tried again by gRPC's retry policy, and a write without a
key is sent exactly once (Envoy's access log counts the tries by the request id each call sends).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable

import grpc
import pytest
from spotify.library.v1 import library_pb2

from sdk.client import MeshClient
from tests.faults.harness import FaultMesh
from tests.support import until


def tries(fm: FaultMesh, request_id: str) -> int:
    """How many times Envoy saw the calls that carried `request_id`."""
    log = fm.mesh.layout.run_dir / "logs" / "envoy-access.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if request_id in line]
    return sum(1 for line in lines if line.get("request_id") == request_id)


def failing(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return failed.value.code()  # type: ignore[attr-defined, no-any-return]


def test_the_sdk_retries_only_what_is_safe_and_carries_on_after_a_restart(
    healthy_mesh: FaultMesh, new_account: Callable[..., tuple[str, str, str]]
) -> None:
    fm = healthy_mesh
    _, _, token = new_account("SDK Through A Crash")
    with MeshClient(fm.mesh.envoy_url, token=token, timeout_s=20) as client:
        playlist = client.library.CreatePlaylist(library_pb2.CreatePlaylistRequest(name="Before"))
        with fm.held_down("library_svc"):  # down for as long as the calls below take
            victim = fm.kill("library_svc")
            fm.wait_dead(victim)
            ids = {kind: f"sdk-{kind}-{uuid.uuid4().hex}" for kind in ("read", "keyed", "unkeyed")}

            def marked(kind: str) -> tuple[tuple[str, str]]:
                return (("x-request-id", ids[kind]),)

            read = library_pb2.GetPlaylistRequest(id=playlist.id)
            keyed = library_pb2.CreatePlaylistRequest(name="During", request_id=uuid.uuid4().hex)
            unkeyed = library_pb2.UpdatePlaylistRequest(id=playlist.id, name="Renamed")
            # Each from a client of its own: gRPC's retry budget is per channel, and one
            # call's failed tries would spend another's.
            calls: dict[str, Callable[[MeshClient], object]] = {
                "read": lambda c: c.library.GetPlaylist(read, metadata=marked("read")),
                "keyed": lambda c: c.library.CreatePlaylist(keyed, metadata=marked("keyed")),
                "unkeyed": lambda c: c.library.UpdatePlaylist(unkeyed, metadata=marked("unkeyed")),
            }
            for kind, call in calls.items():
                with MeshClient(fm.mesh.envoy_url, token=token, timeout_s=20) as own:
                    assert failing(functools.partial(call, own)) == grpc.StatusCode.UNAVAILABLE, kind
            # Envoy writes its access log about once a second.
            assert until(lambda: tries(fm, ids["keyed"]) > 1, "the keyed write's tries in the log", 10)
            assert until(lambda: tries(fm, ids["read"]) > 1, "the read's tries in the log", 10)
            assert tries(fm, ids["unkeyed"]) == 1
        fm.wait_restarted(victim)

        # The same client, once the service is back: the keyed write sent again with its key
        # creates one playlist, whatever its earlier tries reached.
        def works() -> library_pb2.Playlist | None:
            try:
                return client.library.CreatePlaylist(keyed)
            except grpc.RpcError:
                return None

        created = until(works, "the keyed write to succeed after the restart", 30, interval=0.5)
        assert client.library.CreatePlaylist(keyed).id == created.id
        assert client.library.GetPlaylist(read).id == playlist.id
        names = [p.name for p in client.library.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest()).items]
        assert sorted(names) == ["Before", "During"]
