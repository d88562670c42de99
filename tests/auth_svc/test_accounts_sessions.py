"""Account rules and sessions against the real PostgreSQL and Redis (no Envoy, no gRPC)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from auth_svc import rules
from auth_svc.accounts import Accounts
from auth_svc.models import AuditLog, User
from auth_svc.passwords import PasswordHasher
from auth_svc.session_store import SessionStore, digest
from auth_svc.sessions import Sessions
from auth_svc.store import AuditEntry, AuthStore
from meshkit import db
from meshkit.errors import AlreadyExists, InvalidArgument, PermissionDenied, Unauthenticated

ROUNDS = 4  # bcrypt's minimum: these tests are about the rules, not the cost


class CountingHasher(PasswordHasher):
    """The real hasher, recording every verification (and able to act in the middle of one)."""

    def __init__(self) -> None:
        super().__init__(ROUNDS)
        self.verified: list[str | None] = []
        self.during_verify: Callable[[], Awaitable[None]] | None = None

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.verified.append(password_hash)
        if self.during_verify is not None:
            await self.during_verify()
        return await super().verify(password, password_hash)


@dataclass(frozen=True)
class Parts:
    accounts: Accounts
    sessions: Sessions
    session_store: SessionStore
    store: AuthStore
    hasher: CountingHasher


@pytest.fixture
async def parts(database_url: str, redis_url: str) -> AsyncIterator[Parts]:
    engine = db.create_engine(database_url, pool_size=2)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = AuthStore(db.session_factory(engine))
    hasher = CountingHasher()
    session_store = SessionStore(redis, ttl_s=60)
    yield Parts(
        Accounts(store, session_store, hasher),
        Sessions(store, session_store, hasher),
        session_store,
        store,
        hasher,
    )
    await redis.aclose()
    await engine.dispose()


def unique_email() -> str:
    return f"unit-{uuid.uuid4().hex[:12]}@example.com"


async def failed_logins(store: AuthStore, email: str) -> list[AuditLog]:
    async with store.sessions() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == rules.LOGIN, AuditLog.resource_id == email)
        )
        return list(rows)


async def test_unknown_email_and_wrong_password_cost_the_same(parts: Parts) -> None:
    store, hasher = parts.store, parts.hasher
    email = unique_email()
    await parts.accounts.register(email=email, password="right-password", display_name="", country="", ip="")
    ghost = unique_email()
    errors = []
    for who in (email, ghost):
        hasher.verified.clear()
        with pytest.raises(Unauthenticated) as err:
            await parts.sessions.login(email=who, password="wrong-password", ip="198.51.100.1")
        errors.append(err.value.message)
        assert len(hasher.verified) == 1  # one bcrypt check each: a real hash, or the dummy one
        [row] = await failed_logins(store, who)
        assert (row.success, str(row.actor_ip), row.details) == (
            False,
            "198.51.100.1",
            {"reason": "invalid_credentials"},
        )
    assert hasher.verified == [None]
    assert errors[0] == errors[1]


async def test_a_login_email_with_control_characters_is_invalid_and_neither_looked_up_nor_audited(
    parts: Parts,
) -> None:
    for email in ("a\x00b@example.com", "a@exam\nple.com"):
        parts.hasher.verified.clear()
        with pytest.raises(InvalidArgument):
            await parts.sessions.login(email=email, password="any-password", ip="198.51.100.1")
        assert parts.hasher.verified == []
        assert await failed_logins(parts.store, rules.normalise_email(email).replace("\x00", "")) == []


async def test_a_ban_committed_during_login_leaves_no_session(parts: Parts) -> None:
    store, hasher = parts.store, parts.hasher
    email = unique_email()
    account = await parts.accounts.register(
        email=email, password="right-password", display_name="", country="", ip=""
    )

    async def ban_now() -> None:  # the admin's ban lands after the account was read as not banned
        hasher.during_verify = None
        await store.set_banned(account.user.id, True, "race", AuditEntry(rules.BAN))

    hasher.during_verify = ban_now
    with pytest.raises(PermissionDenied):
        await parts.sessions.login(email=email, password="right-password", ip="")
    assert await parts.session_store.redis.scard(f"user_sessions:{account.user.id.hex}") == 0


async def test_invalid_registrations_store_nothing(parts: Parts) -> None:
    accounts, store = parts.accounts, parts.store

    async def users() -> int:
        async with store.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)

    before = await users()
    for kwargs in (
        {"email": unique_email(), "password": "short"},
        {"email": unique_email(), "password": "x" * 73},
        {"email": "no-at-sign", "password": "long-enough"},
        {"email": unique_email(), "password": "long-enough", "country": "se1"},
        {"email": unique_email(), "password": "long-enough", "display_name": "n" * 101},
    ):
        with pytest.raises(InvalidArgument):
            await accounts.register(**{"display_name": "", "country": "", "ip": "", **kwargs})
    email = unique_email()
    await accounts.register(email=email, password="long-enough", display_name="", country="", ip="")
    with pytest.raises(AlreadyExists):
        await accounts.register(
            email=f" {email.upper()} ", password="long-enough", display_name="", country="", ip=""
        )
    assert await users() == before + 1


async def test_sessions_revoke_all_but_one_and_updates_never_resurrect(parts: Parts) -> None:
    sessions = parts.session_store
    user_id = uuid.uuid4()
    tokens = [await sessions.create(user_id, {"user"}, "free") for _ in range(3)]
    assert (await sessions.get(tokens[0], touch=False)).roles == frozenset({"user"})  # type: ignore[union-attr]

    await sessions.redis.delete(f"session:{digest(tokens[2])}")  # as if it had expired
    await sessions.update_identity(user_id, {"user", "premium"}, "premium")
    assert await sessions.get(tokens[2], touch=False) is None  # an expired session stays expired
    live = await sessions.get(tokens[1], touch=False)
    assert live is not None and (live.product, live.roles_header) == ("premium", "premium,user")

    assert await sessions.revoke_all(user_id, keep_token=tokens[0]) == 1
    assert await sessions.get(tokens[1], touch=False) is None
    assert await sessions.get(tokens[0], touch=False) is not None
    await sessions.create(user_id, {"user"}, "free")  # prunes the index of dead entries
    assert await sessions.redis.scard(f"user_sessions:{user_id.hex}") == 2


async def test_use_slides_the_expiry_at_most_once_per_touch_interval(parts: Parts) -> None:
    """The request path of a live session writes its expiry at most once per interval (a tenth of
    the TTL here, a minute for the seed's 4 h), so a session in use never expires, while most
    requests cost one read."""
    now = [1000.0]
    store = SessionStore(parts.session_store.redis, ttl_s=60, clock=lambda: now[0])
    token = await store.create(uuid.uuid4(), {"user"}, "free")
    key = f"session:{digest(token)}"
    await store.redis.expire(key, 50)
    assert await store.get(token, touch=True) is not None
    assert await store.redis.ttl(key) > 50  # the first use pushed it out to the full TTL
    await store.redis.expire(key, 50)
    now[0] += 5.9  # within the 6 s interval: read only
    assert await store.get(token, touch=True) is not None
    assert await store.redis.ttl(key) <= 50
    now[0] += 0.2  # past it: pushed again
    assert await store.get(token, touch=True) is not None
    assert await store.redis.ttl(key) > 50
    # A revoked session is gone at once, whatever this process remembers of its last push.
    await store.revoke(token)
    assert await store.get(token, touch=True) is None
    assert not await store.redis.exists(key)
