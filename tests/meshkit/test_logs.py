"""The repeat filter: one line per kind of kafka-python failure per window, with a count of the rest."""

from __future__ import annotations

import logging

from meshkit.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_of_one_template_pass_once_per_window_and_say_how_many_were_dropped() -> None:
    clock = Clock()
    repeats = RepeatFilter("kafka", window_s=30, clock=clock)
    passed = [
        repeats.filter(_record("kafka.conn", "%s: Closing connection. %s", f"conn {n}", "reset"))
        for n in range(100)
    ]
    assert passed == [True] + [False] * 99
    clock.now = 29.9
    assert not repeats.filter(_record("kafka.conn", "%s: Closing connection. %s", "conn", "reset"))
    clock.now = 30.0
    later = _record("kafka.conn", "%s: Closing connection. %s", "conn", "reset")
    assert repeats.filter(later)
    assert later.repeats_suppressed == 100
    clock.now = 61.0
    quiet = _record("kafka.conn", "%s: Closing connection. %s", "conn", "reset")
    assert repeats.filter(quiet) and not hasattr(quiet, "repeats_suppressed")


def test_other_templates_and_other_loggers_are_not_held_back() -> None:
    repeats = RepeatFilter("kafka", clock=Clock())
    assert repeats.filter(_record("kafka.conn", "connect failed"))
    assert repeats.filter(_record("kafka.client", "connect failed"))  # another logger
    assert repeats.filter(_record("kafka.conn", "socket disconnected"))  # another template
    for _ in range(3):
        assert repeats.filter(_record("meshkit.rpc", "connect failed"))
        assert repeats.filter(_record("kafkaesque", "connect failed"))  # not under the prefix
