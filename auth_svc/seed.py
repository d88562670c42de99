"""Seed entry point: accounts for a development mesh, written by auth_svc's own code.

A launcher or a dev-data package hands over plain `SeedAccount`s; auth_svc hashes their passwords
with its own hasher and writes its own tables, so nothing outside the service touches its schema.
Accounts that already exist (by id) are left as they are, so seeding twice changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from auth_svc import models, rules
from auth_svc.passwords import PasswordHasher
from meshkit.db import normalize_url


@dataclass(frozen=True)
class SeedAccount:
    id: uuid.UUID
    email: str
    password: str
    display_name: str
    roles: tuple[str, ...]
    # Artists this account manages (role artist).
    managed_artists: tuple[uuid.UUID, ...] = ()


def load_accounts(database_url: str, accounts: Sequence[SeedAccount], *, bcrypt_rounds: int = 12) -> int:
    """Create the accounts that do not exist yet; returns how many were created."""
    hasher = PasswordHasher(bcrypt_rounds)
    engine = create_engine(normalize_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            existing = set(
                session.scalars(select(models.User.id).where(models.User.id.in_([a.id for a in accounts])))
            )
            missing = [a for a in accounts if a.id not in existing]
            for account in missing:
                password_hash = asyncio.run(hasher.hash(account.password))
                session.add(
                    models.User(
                        id=account.id,
                        email=rules.normalise_email(account.email),
                        password_hash=password_hash,
                        display_name=account.display_name,
                    )
                )
                session.flush()
                session.add_all(models.UserRole(user_id=account.id, role=role) for role in account.roles)
                session.add_all(
                    models.UserArtist(user_id=account.id, artist_id=artist)
                    for artist in account.managed_artists
                )
        return len(missing)
    finally:
        engine.dispose()
