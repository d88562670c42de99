"""Sessions in Redis: opaque bearer tokens with a sliding TTL and a per-user index.

Layout:
- ``session:<sha256(token)>``: a hash {uid, roles, product, country, created_at, ip} that expires after
  ``ttl_s`` of inactivity; a validation with ``touch`` pushes the expiry out again, at most once
  per interval per session and process (``MAX_TOUCH_INTERVAL_S``, a minute, for the seed's 4 h;
  a tenth of a shorter TTL), so the request path of a live session is one read, not a read and a write. The
  expiry therefore slides with a lag of up to that interval. The key
  holds a digest of the token, not the token, so a Redis dump or `MONITOR` hands out no live
  credentials.
- ``user_sessions:<user uuid>``: a set of that user's session digests, so logout-everywhere, a
  password change and a ban revoke every session at once without a `KEYS` scan. It has no TTL
  (one small set per user); members whose session expired are pruned at the user's next login.

Roles, product and country are copied into the session so that ext_authz answers from Redis
alone; any change to roles or product (subscription, admin) rewrites them in the user's live
sessions. Country is set at registration and taken at login.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as redis

from meshkit import ids
from meshkit.ttlcache import TTLCache

SESSION_PREFIX = "session:"
USER_SESSIONS_PREFIX = "user_sessions:"
# The longest a live session goes without its expiry being pushed out (see the module docstring).
MAX_TOUCH_INTERVAL_S = 60.0
# Sessions whose last push this process remembers; beyond that, the oldest are pushed again.
TOUCHED_MAX_ENTRIES = 100_000

# Rewrites identity fields of sessions that still exist. A plain HSET would resurrect an expired
# session as a hash without a TTL, so the existence check and the write must be one atomic step.
_UPDATE_IF_EXISTS = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'roles', ARGV[1], 'product', ARGV[2])
  end
end
return #KEYS
"""


@dataclass(frozen=True)
class Session:
    """A live session: whose it is and what Envoy tells the services about them."""

    digest: str
    user_id: uuid.UUID
    roles: frozenset[str]
    product: str
    created_at: float
    country: str = ""

    @property
    def roles_header(self) -> str:
        return ",".join(sorted(self.roles))


def digest(token: str) -> str:
    """The Redis id of a token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _session_key(session_digest: str) -> str:
    return f"{SESSION_PREFIX}{session_digest}"


def _user_key(user_id: uuid.UUID) -> str:
    return f"{USER_SESSIONS_PREFIX}{user_id.hex}"


def _roles_field(roles: Iterable[str]) -> str:
    return ",".join(sorted(set(roles)))


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the mesh's clients decode replies; a raw client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class SessionStore:
    def __init__(
        self, client: redis.Redis, ttl_s: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._update_script = client.register_script(_UPDATE_IF_EXISTS)
        # Session keys whose expiry this process pushed out less than an interval ago.
        self._touched: TTLCache[str, bool] = TTLCache(
            TOUCHED_MAX_ENTRIES, min(MAX_TOUCH_INTERVAL_S, ttl_s / 10), clock
        )

    async def create(
        self, user_id: uuid.UUID, roles: Iterable[str], product: str, ip: str = "", country: str = ""
    ) -> str:
        """Open a session and return its token (shown to the client once, never stored)."""
        await self.prune(user_id)
        token = secrets.token_urlsafe(32)
        key = digest(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _session_key(key),
                mapping={
                    "uid": ids.encode(user_id),
                    "roles": _roles_field(roles),
                    "product": product,
                    "country": country,
                    "created_at": f"{time.time():.3f}",
                    "ip": ip,
                },
            )
            pipe.expire(_session_key(key), self.ttl_s)
            pipe.sadd(_user_key(user_id), key)
            await pipe.execute()
        return token

    async def get(self, token: str, *, touch: bool) -> Session | None:
        """The session behind `token`, or None (one round trip); `touch` restarts its sliding TTL
        unless this process did so less than a touch interval ago."""
        if not token:
            return None
        key = _session_key(digest(token))
        if touch and self._touched.get(key) is None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                # Only an existing key gets a TTL: EXPIRE never creates one.
                pipe.expire(key, self.ttl_s)
                fields = (await pipe.execute())[0]
            if fields:
                self._touched.put(key, True)
        else:
            fields = await self.redis.hgetall(key)
        if not fields or "uid" not in fields:
            return None
        return Session(
            digest=key.removeprefix(SESSION_PREFIX),
            user_id=ids.decode(fields["uid"]),
            roles=frozenset(r for r in fields.get("roles", "").split(",") if r),
            product=fields.get("product", "free"),
            country=fields.get("country", ""),
            created_at=float(fields.get("created_at", "0") or 0),
        )

    async def ttl(self, token: str) -> int:
        """Seconds left before the session expires unless used (-2 when it is gone)."""
        return int(await self.redis.ttl(_session_key(digest(token))))

    async def revoke(self, token: str) -> bool:
        """Close one session; True when it existed."""
        session = await self.get(token, touch=False)
        if session is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_session_key(session.digest))
            pipe.srem(_user_key(session.user_id), session.digest)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def revoke_all(self, user_id: uuid.UUID, *, keep_token: str = "") -> int:
        """Close every session of a user (except `keep_token`'s); returns how many were live.

        Members are removed one by one (SREM), never the whole set (DEL): a session opened while
        this runs stays indexed, so the next revocation still finds it.
        """
        members = await self._members(user_id)
        keep = digest(keep_token) if keep_token else None
        doomed = [m for m in members if m != keep]
        if not doomed:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(_session_key(m) for m in doomed))
            pipe.srem(_user_key(user_id), *doomed)
            deleted, _ = await pipe.execute()
        return int(deleted)

    async def update_identity(self, user_id: uuid.UUID, roles: Iterable[str], product: str) -> None:
        """Rewrite roles and product in the user's live sessions (after a role or plan change)."""
        members = await self._members(user_id)
        if members:
            await self._update_script(
                keys=[_session_key(m) for m in members], args=[_roles_field(roles), product]
            )

    async def prune(self, user_id: uuid.UUID) -> None:
        """Drop index entries whose session has expired (keeps the per-user set small)."""
        members = await self._members(user_id)
        if not members:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(_session_key(member))
            alive = await pipe.execute()
        dead = [m for m, exists in zip(members, alive, strict=True) if not exists]
        if dead:
            await self.redis.srem(_user_key(user_id), *dead)

    async def describe(self, user_id: uuid.UUID) -> list[dict[str, object]]:
        """The user's live sessions as a data export shows them: opened when, from where, for how
        long still (not their tokens or digests)."""
        found = []
        for member in await self._members(user_id):
            fields = await self.redis.hgetall(_session_key(member))
            if not fields:
                continue
            values = {_text(k): _text(v) for k, v in fields.items()}
            found.append(
                {
                    "opened_at": dt.datetime.fromtimestamp(float(values.get("created_at") or 0), dt.UTC),
                    "ip": values.get("ip", ""),
                    "country": values.get("country", ""),
                    "expires_in_s": await self.redis.ttl(_session_key(member)),
                }
            )
        return sorted(found, key=lambda session: str(session["opened_at"]))

    async def _members(self, user_id: uuid.UUID) -> list[str]:
        """The digests in a user's session index."""
        return [_text(member) for member in await self.redis.smembers(_user_key(user_id))]
