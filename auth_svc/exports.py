"""Data exports: a user asks for everything the mesh stores about them and downloads one archive.

Asking creates a job (once per request id: a retry answers the same job) and is audited. A worker
in every auth_svc replica claims due jobs one at a time (the store leases them), asks every
service for its part (ExportUserData: each reads only its own tables) and auth's own part, and
stores one zip: a folder of JSON files per service and a README saying what each file holds.
Because each job costs every service a read of the user's rows, a user has one job in progress at
a time and starts at most MAX_PER_DAY a day; a new request id beyond that is refused
(FAILED_PRECONDITION), naming the export to follow or when the next may be asked for.
A service that cannot answer fails the attempt; the job is tried again later and fails for good
after a few attempts. Completion is audited.

The archive is fetched through a signed URL (meshkit.signing, the mesh's URL-signing keys) bound
to the export's path and the user, valid for an hour from each GetDataExport; whoever holds it may
download the archive without a session (a browser link, a download manager). Each download is
audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import uuid
import zipfile
from dataclasses import dataclass, field
from urllib.parse import urlencode

from spotify.common.v1 import common_pb2

from auth_svc import rules
from auth_svc.clients import STUBS, ServiceParts
from auth_svc.export_store import ExportRow, ExportStore
from auth_svc.session_store import SessionStore
from auth_svc.store import AuditEntry
from meshkit import ids, signing
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from meshkit.user_export import ExportFile, plain, response

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_S = 15.0
# How long one attempt may take before another worker may claim the job again.
LEASE_S = 120.0
# New exports one user may start in any 24 hours (retries of a request id are not new).
MAX_PER_DAY = 3


def may_start(recent: list[ExportRow]) -> None:
    """Refuses a new export while one is in progress, or once the day's are used up.

    `recent` is the user's exports requested in the last 24 hours, oldest first."""
    pending = [row for row in recent if row.state == "pending"]
    if pending:
        raise FailedPrecondition(
            f"data export {ids.encode(pending[0].id)} is still being prepared: "
            "follow it with GetDataExport before asking for another"
        )
    if len(recent) >= MAX_PER_DAY:
        reopens = recent[-MAX_PER_DAY].requested_at + dt.timedelta(days=1)
        raise FailedPrecondition(
            f"{MAX_PER_DAY} data exports were asked for in the last 24 hours: "
            f"the next may be asked for after {reopens.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        )


def archive_path(export_id: uuid.UUID) -> str:
    return f"/api/account/data-export/{ids.encode(export_id)}/archive"


@dataclass(frozen=True)
class Download:
    """A done export's signed URL and when it expires."""

    url: str
    expires_at: dt.datetime


@dataclass
class Exports:
    store: ExportStore
    sessions: SessionStore
    parts: ServiceParts
    public_base_url: str
    url_ttl_s: int = 3600
    poll_s: float = 2.0
    keyring: signing.KeyRing | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    # ---- the API -----------------------------------------------------------------------------

    async def request(self, user_id: uuid.UUID, request_id: str, ip: str) -> ExportRow:
        key = request_id.strip() or str(uuid.uuid4())  # without a key, every call is a new export
        if len(key) > 200:
            raise InvalidArgument("request_id is longer than 200 characters")
        entry = AuditEntry.on_user(rules.DATA_EXPORT_REQUESTED, user_id, ip)
        row = await self.store.create(user_id, key, entry, may_start)
        self._wake.set()
        return row

    async def get(self, user_id: uuid.UUID, export_id: uuid.UUID) -> tuple[ExportRow, Download | None]:
        """The caller's own export (another user's does not exist for them) and, once done, a
        fresh signed URL."""
        row = await self.store.get(user_id, export_id)
        if row is None:
            raise NotFound(f"data export {ids.encode(export_id)} not found")
        if row.state != "done":
            return row, None
        signed = signing.sign(
            archive_path(row.id), ids.encode(user_id), ttl_s=self.url_ttl_s, keyring=self.keyring
        )
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=self.url_ttl_s)
        return row, Download(self.public_base_url.rstrip("/") + signed, expires)

    async def download(
        self, export_id: uuid.UUID, exp: int, uid: str, kid: str, sig: str, ip: str
    ) -> tuple[ExportRow, bytes]:
        """The archive, for the holder of a valid signed URL; PERMISSION_DENIED otherwise."""
        query = urlencode({"exp": exp, "uid": uid, "kid": kid, "sig": sig})
        try:
            claims = signing.verify(archive_path(export_id), query, keyring=self.keyring)
        except signing.SignatureError as err:
            if err.reason is signing.SignatureErrorReason.EXPIRED:
                raise PermissionDenied(
                    "this download link has expired: ask GetDataExport for a new one"
                ) from err
            raise PermissionDenied("this download link is not valid") from err
        found = await self.store.archive(export_id)
        if found is None or ids.encode(found[0].user_id) != claims.user_id:
            raise NotFound(f"data export {ids.encode(export_id)} not found")
        row, archive = found
        await self.store.record(
            AuditEntry.on_user(
                rules.DATA_EXPORT_DOWNLOADED, row.user_id, ip, details={"export_id": ids.encode(row.id)}
            )
        )
        return row, archive

    # ---- the worker --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="data-export-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("data export worker failed; retrying")

    async def run_once(self) -> bool:
        """Assemble one due export; False when none was due."""
        row = await self.store.claim(LEASE_S)
        if row is None:
            return False
        try:
            archive = await self.assemble(row)
        except Exception as err:  # a service down, say: try again later
            failed = await self.store.retry(row.id, str(err), RETRY_S, MAX_ATTEMPTS)
            log.warning(
                "data export attempt failed",
                extra={
                    "export_id": ids.encode(row.id),
                    "attempt": row.attempts,
                    "final": failed,
                    "error": str(err),
                },
            )
            return True
        entry = AuditEntry.on_user(
            rules.DATA_EXPORT_COMPLETED,
            row.user_id,
            "",
            details={"export_id": ids.encode(row.id), "bytes": len(archive)},
        )
        await self.store.complete(row.id, archive, entry)
        log.info("data export ready", extra={"export_id": ids.encode(row.id), "bytes": len(archive)})
        return True

    async def assemble(self, row: ExportRow) -> bytes:
        """The zip: auth's part, every service's part, and the README that explains them."""
        own = await self.store.user_part(row.user_id)
        sessions = await self.sessions.describe(row.user_id)
        own.append(ExportFile("auth/sessions.json", "Your signed-in sessions still open.", plain(sessions)))
        others = await asyncio.gather(*(self.parts.part(service, row.user_id) for service in STUBS))
        files = [f for part in (response(own).files, *others) for f in part]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.md", _readme(row, files))
            for file in files:
                archive.writestr(file.name, file.content)
        return buffer.getvalue()


def _readme(row: ExportRow, files: list[common_pb2.ExportedFile]) -> str:
    lines = [
        "# Your data",
        "",
        f"Everything the service stores about you, as of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"(export {ids.encode(row.id)}).",
        "One folder per part of the service, each file a JSON list of records as they are stored.",
        "Ids are the 22-character ids the API shows (spotify:<type>:<id> in URIs); times are UTC.",
        "Nothing here is about anyone else: where a record meets another person, they are left out.",
        "",
        "| file | what it holds |",
        "|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.description} |" for f in files]
    return "\n".join(lines) + "\n"
