"""JSON logs with the request id and trace id of whatever request is being served."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from meshkit import ids
from meshkit.context import current_caller, current_request_id


def app_version() -> str:
    """APP_VERSION (set by the image build or the deployment), else the installed package's."""
    configured = os.environ.get("APP_VERSION", "")
    if configured:
        return configured
    try:
        return importlib.metadata.version("spotify-mesh")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


class _RequestContextFilter(logging.Filter):
    """Stamps each record with the service name and version, the request id, the signed-in user
    (unless the record names one itself) and OpenTelemetry trace/span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.version = app_version()

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.version = self.version
        record.request_id = current_request_id() or None
        if getattr(record, "user_id", None) is None:
            user = current_caller().user_id
            if user is not None:
                record.user_id = ids.encode(user)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


class RepeatFilter(logging.Filter):
    """Lets through the first record of each (logger, message template) per `window_s`, counting the
    ones it drops into the next that passes (`repeats_suppressed`).

    For kafka-python, which logs every failed connect, fetch and metadata refresh of every client
    at ERROR while a broker is away: a few seconds of outage gave about 1,500 lines per run. The
    templates are constant (arguments vary), so one line per kind of failure per window remains.
    """

    def __init__(
        self, prefix: str, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        # (logger, template) -> (when one last passed, how many were dropped since)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self.prefix and not record.name.startswith(self.prefix + "."):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            passed, dropped = self._seen.get(key, (float("-inf"), 0))
            if now - passed < self.window_s:
                self._seen[key] = (passed, dropped + 1)
                return False
            self._seen[key] = (now, 0)
        if dropped:
            record.repeats_suppressed = dropped
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stdout as one JSON object per line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_RequestContextFilter(service))
    handler.addFilter(RepeatFilter("kafka"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO about every connection it makes.
    logging.getLogger("kafka").setLevel(logging.WARNING)
