"""A service's part of a user's data export: its rows as JSON files, for auth_svc to assemble.

Each service that stores user data answers `ExportUserData` (internal) with files of its own, read
from its own tables only. Rows go out as they are stored, one JSON object per row, with the mesh's
public forms: ids as base62 (the ids the API shows), times as ISO 8601 in UTC. A file holds
nothing about anyone else: a query that meets another user's row leaves that user out (say
"someone else" where it matters, as a collaborator's additions to the user's playlist).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spotify.common.v1 import common_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit import ids


@dataclass(frozen=True)
class ExportFile:
    """One file of a service's part: its path in the archive, what it holds, and its rows."""

    name: str
    description: str
    rows: list[dict[str, Any]]


def plain(value: Any) -> Any:
    """`value` in the export's JSON forms (ids base62, times ISO 8601, bytes base64)."""
    if isinstance(value, uuid.UUID):
        return ids.encode(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def rows(found: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """Database rows (mappings) as export rows."""
    return [plain(dict(row)) for row in found]


def response(files: Iterable[ExportFile]) -> common_pb2.ExportUserDataResponse:
    return common_pb2.ExportUserDataResponse(
        files=[
            common_pb2.ExportedFile(
                name=f.name,
                description=f.description,
                content=json.dumps(f.rows, indent=2, ensure_ascii=False, sort_keys=True).encode(),
            )
            for f in files
        ]
    )


# (file, what it holds, mapped table with a `user_id` column, order) of a whole-row export.
TableSpec = tuple[str, str, Any, Any]


async def table_files(
    session: AsyncSession, user_id: uuid.UUID, specs: Iterable[TableSpec]
) -> list[ExportFile]:
    """Every column of the user's rows of each table, one file a table."""
    files = []
    for name, description, table, order in specs:
        found = await session.execute(select(table.__table__).where(table.user_id == user_id).order_by(order))
        files.append(ExportFile(name, description, rows(found.mappings())))
    return files


# A service's export of one user: its files (read from its own tables only).
Exporter = Callable[[uuid.UUID], Awaitable[list[ExportFile]]]


async def answer(
    request: common_pb2.ExportUserDataRequest, export: Exporter
) -> common_pb2.ExportUserDataResponse:
    """ExportUserData's whole servicer method, the same in every service."""
    return response(await export(ids.decode(request.user_id, what="user_id")))
