"""Playback events from a device: recorded at once, kept in SQLite until the server took them.

A car loses its link in a tunnel and a speaker is unplugged mid-song: every event is written to
the device's database first and sent in batches (`flush`, at most the server's batch limit per
call), and deleted only once the server answered for it. An answer lost on the way back means the
batch is sent again; each event carries its playback session's idempotency key (the seed's
`user_track_sessionStart`), so the server counts it once whatever the number of deliveries.

    reporter = EventReporter(client, "events.db", device_id="car-1", device_type="automobile")
    session = reporter.start(user_id, track_id, duration_ms)
    session.progress(31_000)
    reporter.flush()          # also later, when the link is back
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from spotify.playback.v1 import playback_pb2

from sdk.client import MeshClient

log = logging.getLogger(__name__)

# The server takes at most this many events per request (playback_svc's limit).
BATCH_LIMIT = 500
EVENTS = ("start", "progress", "pause", "complete", "skip")
# Failures after which the batch waits for the next flush: the link or the mesh is away.
OFFLINE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event BLOB NOT NULL
);
"""


def session_key(user_id: str, track_id: str, started_at_ms: int) -> str:
    """A playback session's idempotency key: who played what, from when."""
    return f"{user_id}_{track_id}_{started_at_ms}"


@dataclass
class PlaybackSession:
    """One play of one track; each call records an event of it."""

    reporter: EventReporter
    key: str
    track_id: str
    duration_ms: int
    context_uri: str = ""

    def start(self, position_ms: int = 0) -> None:
        self.reporter.record(self, "start", position_ms)

    def progress(self, position_ms: int) -> None:
        self.reporter.record(self, "progress", position_ms)

    def pause(self, position_ms: int) -> None:
        self.reporter.record(self, "pause", position_ms)

    def complete(self) -> None:
        self.reporter.record(self, "complete", self.duration_ms)

    def skip(self, position_ms: int) -> None:
        self.reporter.record(self, "skip", position_ms)


@dataclass(frozen=True)
class Flushed:
    """What one flush did."""

    sent: int
    rejected: int
    pending: int


class EventReporter:
    """Records playback events durably and delivers them in batches."""

    def __init__(
        self,
        client: MeshClient,
        path: str | Path,
        *,
        device_id: str = "",
        device_type: str = "",
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        if not 1 <= batch_limit <= BATCH_LIMIT:
            raise ValueError(f"batch_limit must be between 1 and {BATCH_LIMIT}")
        self.client = client
        self.device_id, self.device_type = device_id, device_type
        self.batch_limit = batch_limit
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def start(
        self, user_id: str, track_id: str, duration_ms: int, *, position_ms: int = 0, context_uri: str = ""
    ) -> PlaybackSession:
        """A new playback session, its start event recorded."""
        key = session_key(user_id, track_id, int(time.time() * 1000))
        session = PlaybackSession(self, key, track_id, duration_ms, context_uri)
        session.start(position_ms)
        return session

    def record(self, session: PlaybackSession, event: str, position_ms: int) -> None:
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}")
        stamp = Timestamp()
        stamp.GetCurrentTime()
        message = playback_pb2.ClientPlaybackEvent(
            idempotency_key=session.key,
            track_id=session.track_id,
            event=event,
            position_ms=max(position_ms, 0),
            track_duration_ms=session.duration_ms,
            device_id=self.device_id,
            device_type=self.device_type,
            client_timestamp=stamp,
            context_uri=session.context_uri,
        )
        with self._lock:
            self._db.execute("INSERT INTO pending_events (event) VALUES (?)", (message.SerializeToString(),))

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM pending_events").fetchone()[0])

    def flush(self) -> Flushed:
        """Send what is pending, oldest first, a batch at a time; stops at the first batch the link
        cannot carry (it stays for the next flush). Events the server refuses as invalid are
        dropped (logged): sending them again would be refused again."""
        sent = rejected = 0
        with self._flushing:
            while True:
                with self._lock:
                    rows = self._db.execute(
                        "SELECT seq, event FROM pending_events ORDER BY seq LIMIT ?", (self.batch_limit,)
                    ).fetchall()
                if not rows:
                    break
                events = [playback_pb2.ClientPlaybackEvent.FromString(blob) for _, blob in rows]
                try:
                    reply = self.client.playback.ReportPlaybackEvents(
                        playback_pb2.ReportPlaybackEventsRequest(events=events)
                    )
                except grpc.RpcError as err:
                    if err.code() in OFFLINE:  # type: ignore[attr-defined]
                        break
                    raise
                for refused in reply.rejected:
                    log.warning("playback event refused: %s", refused.reason)
                with self._lock:
                    self._db.execute("DELETE FROM pending_events WHERE seq <= ?", (rows[-1][0],))
                sent += len(rows) - len(reply.rejected)
                rejected += len(reply.rejected)
        return Flushed(sent, rejected, self.pending())

    def close(self) -> None:
        self._db.close()
