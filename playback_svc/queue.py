"""Queue arithmetic for the player: next, previous and shuffle. Pure functions.

``play_states.queue`` holds the tracks in the order they will play. Turning shuffle on reorders
it once (the current track first, every other track once in random order), so next/previous
walk a stable order and every track plays once per pass; turning it off restores the context's
own order (the player re-reads the context), keeping the current track.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

RESTART_THRESHOLD_MS = 3_000  # "previous" past 3 s restarts the track, as Spotify's clients do


def shuffled(queue: Sequence[T], current: T, rng: random.Random | None = None) -> list[T]:
    """``current`` first, then the rest of the queue in random order."""
    rest = list(queue)
    if current in rest:
        rest.remove(current)
    (rng or random.Random()).shuffle(rest)
    return [current, *rest]


def step(queue: Sequence[T], current: T, *, forward: bool, repeat: str) -> int | None:
    """The queue index after (or before) ``current``; None at either end unless repeating the context.

    ``current`` not in the queue (a context that changed under us) starts from the beginning.
    """
    if not queue:
        return None
    try:
        index = list(queue).index(current)
    except ValueError:
        return 0
    target = index + (1 if forward else -1)
    if 0 <= target < len(queue):
        return target
    if repeat == "context":
        return target % len(queue)
    return None
