"""Password hashing with bcrypt, off the event loop, with one timing class for every login failure.

bcrypt at cost 12 takes ~0.2 s of CPU: run on the event loop it would stall every other RPC of
the process (including Envoy's ext_authz checks), so each hash runs in a worker thread (bcrypt
releases the GIL). A login for an unknown email still verifies against a dummy hash of the same
cost, so "no such account" and "wrong password" take the same time and cannot be told apart.
"""

from __future__ import annotations

import asyncio

import bcrypt

# bcrypt only reads the first 72 bytes (bcrypt 5 refuses longer input).
MAX_BYTES = 72


class PasswordHasher:
    """bcrypt hashing and verification at a fixed cost, in worker threads."""

    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        # Same cost as real hashes, so verifying against it takes as long as a real check.
        self._dummy = bcrypt.hashpw(b"no-such-account", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        """A new bcrypt hash (salted) of `password`."""
        salt = bcrypt.gensalt(self.rounds)
        hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether `password` matches; with no hash (unknown account) it still costs one check."""
        candidate = password.encode()[:MAX_BYTES]
        if password_hash is None:
            await asyncio.to_thread(bcrypt.checkpw, candidate, self._dummy)
            return False
        try:
            return await asyncio.to_thread(bcrypt.checkpw, candidate, password_hash.encode())
        except ValueError:  # a malformed stored hash: no password matches it
            return False
