"""reorder.plan_move against the obvious list-slicing definition, for every move in small playlists."""

from __future__ import annotations

import pytest

from library_svc.reorder import apply, plan_move
from library_svc.store import Shift
from meshkit.errors import InvalidArgument


def reference(order: list[str], start: int, before: int, length: int) -> list[str]:
    """Spotify's definition: take the range out, insert it before the item that was at `before`."""
    moving = order[start : start + length]
    anchor = order[before] if before < len(order) else None
    rest = order[:start] + order[start + length :]
    if anchor is None or anchor in moving:
        # before the end, or "before an item of the range": the range lands where it was
        at = len(rest) if anchor is None else start
    else:
        at = rest.index(anchor)
    return rest[:at] + moving + rest[at:]


@pytest.mark.parametrize("total", range(1, 9))
def test_every_move_matches_list_slicing(total: int) -> None:
    order = [f"t{i}" for i in range(total)]
    for start in range(total):
        for length in range(1, total - start + 1):
            for before in range(total + 1):
                moved = apply(order, plan_move(total, start, before, length))
                assert moved == reference(order, start, before, length), (start, before, length)
                assert sorted(moved) == sorted(order)  # a permutation: positions stay dense


def test_a_move_touches_only_the_window_between_range_and_destination() -> None:
    assert plan_move(10_000, 9_000, 8_990, 5) == [Shift(9_000, 9_005, -10), Shift(8_990, 9_000, 5)]
    assert plan_move(10, 2, 7, 2) == [Shift(2, 4, 3), Shift(4, 7, -2)]


def test_moving_a_range_onto_itself_changes_nothing() -> None:
    assert plan_move(5, 1, 1, 2) == []
    assert plan_move(5, 1, 3, 2) == []  # just after the range: still the same order


@pytest.mark.parametrize(
    ("total", "start", "before", "length", "message"),
    [
        (5, 5, 0, 1, "range_start"),
        (5, -1, 0, 1, "range_start"),
        (5, 3, 0, 3, "range_length"),
        (5, 0, 6, 1, "insert_before"),
        (5, 0, 2, 0, "range_length"),
        (0, 0, 0, 1, "range_start"),
    ],
)
def test_out_of_range_moves_are_invalid(
    total: int, start: int, before: int, length: int, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan_move(total, start, before, length)
