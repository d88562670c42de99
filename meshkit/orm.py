"""What every service's ORM base shares: constraint names and column types for annotations.

Each service declares `class Base(DeclarativeBase)` in its own `models.py` with
`metadata = schema_metadata(SCHEMA)` and `type_annotation_map = TYPE_ANNOTATION_MAP`, so its
tables land in its own schema (see meshkit.migrate) with names Alembic can reproduce.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

# Deterministic constraint and index names: migrations can name what they drop or alter.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Python annotations -> PostgreSQL types: timestamps always carry a time zone.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: DateTime(timezone=True),
    dict[str, Any]: JSONB,
    list[str]: ARRAY(Text),
    list[uuid.UUID]: ARRAY(UUID(as_uuid=True)),
}


def schema_metadata(schema: str) -> MetaData:
    """The MetaData of one service's schema, with the shared naming convention."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
