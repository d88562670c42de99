"""Every public route x caller through Envoy, over JSON and native gRPC, against the role table
(tests/e2e/role_table.py): each cell gets exactly the answer the table derives, and the refused
cells, walked first, leave every table as it was."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest

from meshctl.mesh import Mesh
from meshkit.services import GRPC_ONLY_RPCS, EdgePolicy
from tests.e2e import db_state
from tests.e2e.clients import grpc_channel_from
from tests.e2e.role_table import OK, ROUTE_RULES, RULES, Caller, Outcome, Route, routes
from tests.e2e.walk import BUILDERS, Answer, World, make_world, recommendations_built, send_grpc, send_json

Client = Callable[..., httpx.Client]
Cell = tuple[Route, Caller]


def test_the_table_covers_every_public_route_once() -> None:
    table = routes()
    names = [route.name for route in table]
    assert len(names) == len(set(names))
    public = {route.rpc for route in table}
    assert set(BUILDERS) == public, "every public RPC needs a request in tests/e2e/walk.py"
    assert set(RULES) <= public, "a rule names an RPC that is not public"
    assert set(ROUTE_RULES) <= set(names), "a route rule names no route"
    json_rpcs = {route.rpc for route in table if route.http is not None}
    grpc_rpcs = {route.rpc for route in table if route.http is None}
    assert grpc_rpcs == public
    assert public - json_rpcs == GRPC_ONLY_RPCS
    assert {r.rpc for r in table if r.policy is EdgePolicy.ANONYMOUS} == {
        "/spotify.auth.v1.AuthService/Register",
        "/spotify.auth.v1.AuthService/Login",
        "/spotify.auth.v1.AuthService/DownloadDataExport",  # its signed URL is the credential
    }
    # The table is not trivially "everything is allowed": each answer appears.
    answers = {route.expected(caller) for route in table for caller in Caller}
    assert {a.http for a in answers} == {200, 401, 403, 404}


@pytest.fixture(scope="module")
def world(
    running_mesh: Mesh,
    envoy_client: Client,
    admin_token: str,
    new_account: Callable[..., tuple[str, str, str]],
    login: Callable[[str, str], str],
) -> World:
    recommendations_built(running_mesh)
    return make_world(envoy_client(), running_mesh.grpc_target, admin_token, new_account, login)


class Walker:
    """Sends cells: JSON from one address (or a fresh one when the cell asks), gRPC alike."""

    def __init__(self, world: World, mesh: Mesh, envoy_client: Client, channel: grpc.Channel) -> None:
        self.world, self.mesh, self.envoy_client, self.channel = world, mesh, envoy_client, channel
        self.http = envoy_client()
        self.seen: dict[Outcome, int] = collections.Counter()

    def send(self, route: Route, caller: Caller) -> Answer:
        prepared = BUILDERS[route.rpc](self.world, caller, route)
        if route.http is not None:
            answer = send_json(self.envoy_client() if prepared.own_address else self.http, route, prepared)
        elif prepared.own_address:
            with grpc_channel_from(self.mesh.grpc_target) as channel:
                answer = send_grpc(channel, route, prepared)
        else:
            answer = send_grpc(self.channel, route, prepared)
        if prepared.after_success and answer.status in (200, grpc.StatusCode.OK):
            prepared.after_success()
        return answer

    def walk(self, cells: list[Cell]) -> list[str]:
        """Every cell's mismatch with the table, as a readable line."""
        wrong = []
        for route, caller in cells:
            want = route.expected(caller)
            answer = self.send(route, caller)
            self.seen[want] += 1
            expected = want.http if route.http is not None else want.grpc
            if answer.status != expected or not answer.well_formed:
                got = answer.status.name if isinstance(answer.status, grpc.StatusCode) else answer.status
                name = expected.name if isinstance(expected, grpc.StatusCode) else expected
                shape = "" if answer.well_formed else " (not the promised JSON shape)"
                wrong.append(
                    f"{route.name} as {caller.value}: expected {name}, got {got}{shape} {answer.detail}"
                )
        return wrong


@pytest.fixture(scope="module")
def channel(running_mesh: Mesh) -> Iterator[grpc.Channel]:
    with grpc_channel_from(running_mesh.grpc_target) as chan:
        yield chan


@pytest.mark.e2e
def test_every_route_and_caller_gets_the_answer_the_role_table_derives(
    world: World, running_mesh: Mesh, envoy_client: Client, channel: grpc.Channel
) -> None:
    table = routes()
    cells = [(route, caller) for route in table for caller in Caller]
    refused = [(r, c) for r, c in cells if r.expected(c) != OK]
    allowed = [(r, c) for r, c in cells if r.expected(c) == OK]
    walker = Walker(world, running_mesh, envoy_client, channel)

    started = time.monotonic()
    before = db_state.snapshot(running_mesh.database_url)
    wrong = walker.walk(refused)
    changed = db_state.changed(before, db_state.snapshot(running_mesh.database_url))
    wrong += walker.walk(allowed)
    elapsed = time.monotonic() - started

    print(
        f"\nrole table: {len(table)} routes x {len(Caller)} callers = {len(cells)} cells "
        f"({sum(r.http is not None for r in table)} JSON routes, {sum(r.http is None for r in table)} gRPC), "
        f"{len(refused)} refused, {len(allowed)} allowed, in {elapsed:.0f} s"
    )
    assert not wrong, "\n".join(wrong)
    assert not changed, f"refused requests changed {changed}"
