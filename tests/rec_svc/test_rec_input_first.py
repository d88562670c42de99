"""Bad input is refused (400) before the models are asked for, so a caller learns what to fix even
while rec_svc has no build to serve (503). A pure unit: nothing here reaches a store or a service."""

from __future__ import annotations

from typing import Any, cast

import pytest

from meshkit.errors import InvalidArgument, Unavailable
from rec_svc.holder import IndexHolder
from rec_svc.recommendations import Recommendations
from rec_svc.settings import RecSettings

VALID_TRACK = "4iV5W9uYEdYUVa79Axb7Rh"


@pytest.fixture
def unbuilt() -> Recommendations:
    # No store or catalog: every call below must end before it would need one.
    return Recommendations(
        store=cast(Any, None), catalog=cast(Any, None), holder=IndexHolder(), settings=RecSettings()
    )


async def test_a_malformed_id_is_invalid_before_the_build_is_looked_for(unbuilt: Recommendations) -> None:
    with pytest.raises(InvalidArgument):
        await unbuilt.similar_tracks("abc\x00def", 10)
    with pytest.raises(InvalidArgument):
        await unbuilt.radio("artist", "not-an-id", 10, "")
    with pytest.raises(InvalidArgument):
        await unbuilt.recommendations(VALID_TRACK + ",bad", "", "", 10, [])


async def test_well_formed_input_meets_the_missing_build(unbuilt: Recommendations) -> None:
    with pytest.raises(Unavailable):
        await unbuilt.similar_tracks(VALID_TRACK, 10)
    with pytest.raises(Unavailable):
        await unbuilt.recommendations(VALID_TRACK, "", "", 10, [])
