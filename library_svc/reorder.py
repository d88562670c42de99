"""Position arithmetic for moving a range of playlist items (Spotify's "reorder items").

Positions are dense (0..n-1), so a move only touches the window between the range and its
destination: the range slides by some distance and the items it jumps over slide the other way by
the range's length. `plan_move` returns that as a few (start, stop, delta) shifts, which the store
applies with one UPDATE; it is pure so it can be checked exhaustively against list slicing.
"""

from __future__ import annotations

from library_svc.store import Shift
from meshkit.errors import InvalidArgument


def plan_move(total: int, range_start: int, insert_before: int, range_length: int = 1) -> list[Shift]:
    """The shifts that move items [range_start, range_start + range_length) before `insert_before`.

    Positions refer to the playlist before the move, as in Spotify's API. Moving a range to where
    it already is (insert_before inside [range_start, range_start + range_length]) changes nothing
    and returns no shifts.
    """
    if range_length < 1:
        raise InvalidArgument("range_length must be at least 1")
    if not 0 <= range_start < total:
        raise InvalidArgument(f"range_start must be between 0 and {total - 1}, got {range_start}")
    if range_start + range_length > total:
        raise InvalidArgument(
            f"range_start + range_length must be at most {total} (the playlist's length), "
            f"got {range_start + range_length}"
        )
    if not 0 <= insert_before <= total:
        raise InvalidArgument(f"insert_before must be between 0 and {total}, got {insert_before}")
    range_stop = range_start + range_length
    if range_start <= insert_before <= range_stop:
        return []
    if insert_before < range_start:  # move up: the items in between move down
        return [
            Shift(range_start, range_stop, insert_before - range_start),
            Shift(insert_before, range_start, range_length),
        ]
    # move down: the items in between move up
    return [
        Shift(range_start, range_stop, insert_before - range_stop),
        Shift(range_stop, insert_before, -range_length),
    ]


def apply(order: list[str], shifts: list[Shift]) -> list[str]:
    """`order` after the shifts (what the store's UPDATE does to positions), for tests and checks."""
    moved = list(order)
    for index, item in enumerate(order):
        for shift in shifts:
            if shift.start <= index < shift.stop:
                moved[index + shift.delta] = item
    return moved
