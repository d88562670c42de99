import uuid

import pytest

from meshkit import ids
from meshkit.errors import InvalidArgument


def test_round_trip_keeps_every_uuid_and_is_22_characters() -> None:
    for value in (uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1), *(uuid.uuid4() for _ in range(200))):
        text = ids.encode(value)
        assert len(text) == 22
        assert ids.decode(text) == value


def test_encoding_preserves_order_like_spotify_ids_do() -> None:
    values = sorted(uuid.uuid4() for _ in range(50))
    assert sorted(ids.encode(v) for v in values) == [ids.encode(v) for v in values]


@pytest.mark.parametrize("bad", ["", "short", "x" * 23, "!" * 22, "zzzzzzzzzzzzzzzzzzzzzz"])
def test_malformed_ids_are_invalid_argument(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        ids.decode(bad)


def test_uris_parse_and_check_their_kind() -> None:
    value = uuid.uuid4()
    assert ids.parse_uri(ids.uri("track", value), expected="track") == ("track", value)
    assert ids.parse_id_or_uri(ids.encode(value), "track") == value
    with pytest.raises(InvalidArgument):
        ids.parse_uri(ids.uri("album", value), expected="track")
    with pytest.raises(InvalidArgument):
        ids.parse_uri("spotify:track")


def test_id_lists_enforce_their_limit() -> None:
    values = [uuid.uuid4() for _ in range(3)]
    assert ids.parse_id_list(",".join(map(ids.encode, values)), "track", limit=3) == values
    with pytest.raises(InvalidArgument, match="at most 2"):
        ids.parse_id_list(",".join(map(ids.encode, values)), "track", limit=2)
