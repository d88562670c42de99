"""Retry-safe writes: the first answer to an idempotency key is stored and replayed.

A client that did not see the answer to a write (timeout, dropped connection) retries it with the
same key (the request's ``request_id`` field, or the ``Idempotency-Key`` header); the retry must
get the first answer and change nothing again. The mechanism, per (scope, user, key):

1. ``SET key <pending> NX EX lease_s``: the first request claims the key. The lease is short, so a
   process that dies mid-request does not block the key for the whole TTL.
2. The claimant runs the write and stores ``<done + serialized answer>`` with ``EX ttl_s`` (300 s
   by default, the window the API promises). The answer is a protobuf message or a domain value
   (a dataclass), through a `Codec`: domain modules own idempotency and return domain types.
3. A duplicate that finds ``done`` gets the stored response; one that finds ``pending`` (the first
   is still running) polls for up to ``wait_s`` and then gets ABORTED, which a client retries.
4. A write that fails releases its claim (only if still its own), so a corrected retry can run:
   failed writes change nothing, so there is nothing to replay.

Keys are scoped by RPC and user: two users (or two RPCs) never share an answer. The stored entry
also keeps a fingerprint of the request, so reusing a key for a *different* request is refused
instead of silently answering with an unrelated result.

What this does not cover: if Redis loses the stored answer (eviction, failover) or storing it
fails after the write committed, a retry runs again. Writes that use this helper should therefore
also be naturally idempotent where they can (ON CONFLICT DO NOTHING), as the library's are.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import pydantic
import pydantic_core
import redis.asyncio as redis
from google.protobuf.message import Message
from redis.exceptions import RedisError

from meshkit.errors import Aborted, InvalidArgument, Unavailable
from meshkit.text import has_control_characters

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
T = TypeVar("T")

DEFAULT_TTL_S = 300
MAX_KEY_LENGTH = 255


def check_key(key: str, name: str = "idempotency key", max_length: int = MAX_KEY_LENGTH) -> None:
    """INVALID_ARGUMENT for a key no store should hold: too long, or with control characters."""
    if len(key) > max_length:
        raise InvalidArgument(f"{name}: at most {max_length} characters")
    if has_control_characters(key):
        raise InvalidArgument(f"{name}: control characters are not allowed")


def fingerprint(request: object) -> str:
    """A hash of a request's content (a protobuf message, bytes, or a value pydantic can dump).

    Stored beside an answer, so a key reused for a *different* request is refused.
    """
    if isinstance(request, Message):
        data = request.SerializeToString(deterministic=True)
    elif isinstance(request, bytes):
        data = request
    else:
        data = pydantic_core.to_json(request)
    return hashlib.sha256(data).hexdigest()


class Codec(Protocol[T]):
    """How an answer is stored and replayed."""

    def dumps(self, value: T) -> bytes: ...

    def loads(self, data: bytes) -> T: ...


class ProtoCodec(Generic[M]):
    """A protobuf message, serialized deterministically."""

    def __init__(self, message_type: type[M]) -> None:
        self.message_type = message_type

    def dumps(self, value: M) -> bytes:
        return value.SerializeToString(deterministic=True)

    def loads(self, data: bytes) -> M:
        return self.message_type.FromString(data)


class ValueCodec(Generic[T]):
    """A domain value (dataclass, UUID, list, ...) as JSON, through pydantic's validation of its type."""

    def __init__(self, value_type: Any) -> None:
        self.adapter: pydantic.TypeAdapter[T] = pydantic.TypeAdapter(value_type)

    def dumps(self, value: T) -> bytes:
        return self.adapter.dump_json(value)

    def loads(self, data: bytes) -> T:
        return self.adapter.validate_json(data)


# Deletes the key only while it still holds this request's pending claim: a claim that expired and
# was taken over by another request must not be released by the first one.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Idempotency:
    """Stores the first response per (scope, user, key) in Redis and replays it to retries."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        lease_s: int = 30,
        wait_s: float = 5.0,
        poll_s: float = 0.02,
        namespace: str = "idem",
    ) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.namespace = namespace
        self._release = client.register_script(_RELEASE)

    def redis_key(self, scope: str, user: str, key: str) -> str:
        """The Redis key; the client's key is hashed so any text (up to 255 chars) is safe in it."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.namespace}:{scope}:{user}:{digest}"

    async def run(
        self,
        scope: str,
        user: str,
        key: str,
        request: object,
        answer: type[Message] | Codec[T],
        write: Callable[[], Awaitable[T]],
    ) -> T:
        """Run `write` once per key within the TTL; without a key, just run it.

        `request` is what the key must keep meaning (see `fingerprint`); `answer` is the protobuf
        type of the answer, or a `Codec` of any other type.
        """
        if not key:
            return await write()
        check_key(key)
        codec: Codec[Any] = (
            ProtoCodec(answer) if isinstance(answer, type) and issubclass(answer, Message) else answer
        )
        name = self.redis_key(scope, user, key)
        request_fp = fingerprint(request)
        claim = json.dumps({"state": "pending", "fp": request_fp, "token": uuid.uuid4().hex})
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                if await self.redis.set(name, claim, nx=True, ex=self.lease_s):
                    break
                stored = await self.redis.get(name)
            except RedisError as exc:
                raise Unavailable("the idempotency store is unavailable; retry the request") from exc
            if stored is None:
                continue  # the first request failed and released its claim: take it over
            entry = json.loads(stored)
            if entry["fp"] != request_fp:
                raise InvalidArgument("this idempotency key was already used for a different request")
            if entry["state"] == "done":
                replayed: T = codec.loads(base64.b64decode(entry["body"]))
                return replayed
            if time.monotonic() >= deadline:
                raise Aborted("a request with this idempotency key is still in progress; retry it later")
            await asyncio.sleep(self.poll_s)

        try:
            response = await write()
        except BaseException:
            await self._give_up(name, claim)
            raise
        body = base64.b64encode(codec.dumps(response)).decode()
        done = json.dumps({"state": "done", "fp": request_fp, "body": body})
        try:
            await self.redis.set(name, done, ex=self.ttl_s)
        except RedisError:
            # The write committed; failing now would make the client retry a write that happened.
            log.warning("could not store the idempotent response", extra={"scope": scope})
        return response

    async def _give_up(self, name: str, claim: str) -> None:
        try:
            await self._release(keys=[name], args=[claim])
        except RedisError:
            log.warning("could not release an idempotency claim; it expires with its lease")
