"""meshkit.idempotency (retry-safe writes) against real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as redis
from spotify.library.v1 import library_pb2

from meshkit.errors import Aborted, InvalidArgument
from meshkit.idempotency import Idempotency, ValueCodec, fingerprint
from meshkit.redis_client import create_redis

Reply = library_pb2.AddPlaylistItemsResponse


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    conn = create_redis(redis_url)
    yield conn
    await conn.aclose()


def request(uri: str = "spotify:track:0000000000000000000001") -> library_pb2.AddPlaylistItemsRequest:
    return library_pb2.AddPlaylistItemsRequest(id="p", uris=[uri])


class Counter:
    """A write that counts its runs and answers with the run number."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> library_pb2.AddPlaylistItemsResponse:
        self.runs += 1
        return Reply(snapshot_id=f"v{self.runs}")


async def test_a_key_runs_the_write_once_and_replays_its_answer(client: redis.Redis) -> None:
    once, write, key = Idempotency(client), Counter(), str(uuid.uuid4())
    first = await once.run("rpc", "user", key, request(), Reply, write)
    again = await once.run("rpc", "user", key, request(), Reply, write)
    assert (first.snapshot_id, again.snapshot_id, write.runs) == ("v1", "v1", 1)
    assert 295 <= await client.ttl(once.redis_key("rpc", "user", key)) <= 300
    # other users, other RPCs and no key at all are separate
    assert (await once.run("rpc", "someone else", key, request(), Reply, write)).snapshot_id == "v2"
    assert (await once.run("other rpc", "user", key, request(), Reply, write)).snapshot_id == "v3"
    assert (await once.run("rpc", "user", "", request(), Reply, write)).snapshot_id == "v4"
    assert (await once.run("rpc", "user", "", request(), Reply, write)).snapshot_id == "v5"


async def test_a_key_reused_for_another_request_is_refused(client: redis.Redis) -> None:
    once, write, key = Idempotency(client), Counter(), str(uuid.uuid4())
    await once.run("rpc", "user", key, request(), Reply, write)
    with pytest.raises(InvalidArgument, match="different request"):
        await once.run("rpc", "user", key, request("spotify:track:0000000000000000000002"), Reply, write)
    assert write.runs == 1


async def test_a_failed_write_releases_its_key(client: redis.Redis) -> None:
    once, key = Idempotency(client), str(uuid.uuid4())

    async def fail() -> library_pb2.AddPlaylistItemsResponse:
        raise InvalidArgument("no")

    with pytest.raises(InvalidArgument):
        await once.run("rpc", "user", key, request(), Reply, fail)
    assert await client.get(once.redis_key("rpc", "user", key)) is None
    write = Counter()
    assert (await once.run("rpc", "user", key, request(), Reply, write)).snapshot_id == "v1"


async def test_concurrent_duplicates_wait_for_the_first_answer(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    once, key = Idempotency(client, wait_s=10), str(uuid.uuid4())
    release, started = asyncio.Event(), asyncio.Event()
    runs = 0
    reads: dict[asyncio.Task | None, int] = {}
    duplicates: list[asyncio.Task] = []
    polling = asyncio.Event()  # every duplicate has read the pending claim and come back to read it again
    get = client.get

    async def counted_get(name: str) -> object:
        task = asyncio.current_task()
        reads[task] = reads.get(task, 0) + 1
        if duplicates and all(reads.get(d, 0) >= 2 for d in duplicates):
            polling.set()
        return await get(name)

    monkeypatch.setattr(client, "get", counted_get)

    async def slow() -> library_pb2.AddPlaylistItemsResponse:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return Reply(snapshot_id="first")

    first = asyncio.create_task(once.run("rpc", "user", key, request(), Reply, slow))
    await started.wait()
    duplicates.extend(
        asyncio.create_task(once.run("rpc", "user", key, request(), Reply, slow)) for _ in range(5)
    )
    await asyncio.wait_for(polling.wait(), timeout=5)
    assert not any(d.done() for d in duplicates)
    release.set()
    answers = await asyncio.gather(first, *duplicates)
    assert [a.snapshot_id for a in answers] == ["first"] * 6
    assert runs == 1


async def test_a_duplicate_gives_up_with_aborted_while_the_first_is_still_running(
    client: redis.Redis,
) -> None:
    once, key = Idempotency(client, wait_s=0.2), str(uuid.uuid4())
    release, started = asyncio.Event(), asyncio.Event()

    async def stuck() -> library_pb2.AddPlaylistItemsResponse:
        started.set()
        await release.wait()
        return Reply(snapshot_id="late")

    first = asyncio.create_task(once.run("rpc", "user", key, request(), Reply, stuck))
    await started.wait()
    with pytest.raises(Aborted, match="still in progress"):
        await once.run("rpc", "user", key, request(), Reply, Counter())
    release.set()
    assert (await first).snapshot_id == "late"
    assert (await once.run("rpc", "user", key, request(), Reply, Counter())).snapshot_id == "late"


@pytest.mark.parametrize("key", ["k" * 256, "key\x00with-nul", "tab\tkey"])
async def test_a_key_no_store_can_hold_is_refused_before_the_write(client: redis.Redis, key: str) -> None:
    once, write = Idempotency(client), Counter()
    with pytest.raises(InvalidArgument, match="idempotency key"):
        await once.run("rpc", "user", key, request(), Reply, write)
    assert write.runs == 0
    assert await client.exists(once.redis_key("rpc", "user", key)) == 0


@dataclass(frozen=True)
class AddItems:
    """A domain command and its answer, as a domain module keys and replays them."""

    playlist_id: uuid.UUID
    uris: tuple[str, ...]


@dataclass(frozen=True)
class Added:
    snapshot: str
    at: datetime


async def test_a_domain_answer_replays_through_a_value_codec(client: redis.Redis) -> None:
    once, key, runs = Idempotency(client), str(uuid.uuid4()), []
    command = AddItems(uuid.uuid4(), ("spotify:track:0000000000000000000001",))

    async def write() -> Added:
        runs.append(1)
        return Added(f"v{len(runs)}", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))

    first = await once.run("rpc", "user", key, command, ValueCodec(Added), write)
    again = await once.run("rpc", "user", key, command, ValueCodec(Added), write)
    assert first == again == Added("v1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert runs == [1]
    with pytest.raises(InvalidArgument, match="different request"):
        other = AddItems(command.playlist_id, ("spotify:track:0000000000000000000002",))
        await once.run("rpc", "user", key, other, ValueCodec(Added), write)


def test_fingerprints_tell_requests_apart_whatever_their_form() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert fingerprint(AddItems(first, ("a",))) == fingerprint(AddItems(first, ("a",)))
    assert fingerprint(AddItems(first, ("a",))) != fingerprint(AddItems(second, ("a",)))
    assert fingerprint(request()) == fingerprint(request())
    assert fingerprint(request()) != fingerprint(request("spotify:track:0000000000000000000002"))
    assert fingerprint(b"x") != fingerprint(b"y")
