"""Royalty reports over counted streams: admin pro-rata shares, artists' daily counts of their own
artists only (who manages which artist comes from the mesh's auth_svc: GetMe, asked with the
caller's metadata)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from grpc import aio
from spotify.playback.v1 import playback_pb2
from sqlalchemy import insert

from meshkit import ids
from playback_svc.counter.rules import split_weights
from playback_svc.models import CountedStream, RoyaltyAttribution
from tests.playback_svc.data import seed_accounts
from tests.playback_svc.helpers import new_user_id, user_metadata

# A month nothing else in the test database counts streams in (everything else counts "now").
MARCH_2001 = ("2001-03-01", "2001-03-31")


APRIL_1 = datetime(2001, 4, 1, 0, tzinfo=UTC)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2001, 3, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
async def catalog_of_march(db) -> dict[str, str]:
    """Streams in March 2001: track A (artists X and Y) 3 times, B (X) once, C (no artists) once,
    and one stream of B on April 1st 00:00 UTC, just outside the month."""
    x, y = uuid.uuid4(), uuid.uuid4()
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plays = [(a, (x, y), _at(2)), (a, (x, y), _at(2, 23)), (a, (x, y), _at(31, 23)), (b, (x,), _at(2))]
    plays += [(c, (), _at(15)), (b, (x,), APRIL_1)]
    listener = uuid.uuid4()
    async with db.begin() as conn:
        for track, artists, when in plays:
            stream = uuid.uuid4()
            await conn.execute(
                insert(CountedStream).values(
                    id=stream,
                    idempotency_key=f"royalty-{stream}",
                    user_id=listener,
                    track_id=track,
                    counted_at=when,
                    product="premium",
                    position_ms=30_000,
                )
            )
            for artist, weight in zip(artists, split_weights(len(artists)), strict=True):
                await conn.execute(
                    insert(RoyaltyAttribution).values(
                        stream_id=stream,
                        track_id=track,
                        artist_id=artist,
                        user_id=listener,
                        product="premium",
                        counted_at=when,
                        weight=weight,
                    )
                )
    return {"X": ids.encode(x), "Y": ids.encode(y), "A": ids.encode(a), "B": ids.encode(b)}


def admin() -> tuple[tuple[str, str], ...]:
    return user_metadata(new_user_id(), roles="user,admin")


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises(aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_admin_report_gives_each_artist_streams_and_pro_rata_share(playback, catalog_of_march) -> None:
    names = {v: k for k, v in catalog_of_march.items()}
    report = await playback.stub.GetRoyaltyReport(
        playback_pb2.GetRoyaltyReportRequest(period_start=MARCH_2001[0], period_end=MARCH_2001[1]),
        metadata=admin(),
    )
    assert report.total_streams == 5  # C's stream counts in the total, though nobody is credited
    rows = [(names[r.artist_id], r.streams, round(r.share, 6)) for r in report.rows]
    assert rows == [("X", 4, 0.5), ("Y", 3, 0.3)]  # X: 3 halves + 1 whole of 5; Y: 3 halves of 5
    assert Decimal(sum(split_weights(3))) == 1


async def test_royalty_report_is_for_admins_and_checks_its_period(playback, catalog_of_march) -> None:
    def ask(start: str, end: str, metadata) -> object:
        request = playback_pb2.GetRoyaltyReportRequest(period_start=start, period_end=end)
        return playback.stub.GetRoyaltyReport(request, metadata=metadata)

    listener = user_metadata(new_user_id(), roles="user,artist")
    assert await code_of(ask(*MARCH_2001, listener)) == grpc.StatusCode.PERMISSION_DENIED
    assert await code_of(ask(*MARCH_2001, ())) == grpc.StatusCode.UNAUTHENTICATED
    assert await code_of(ask("2001-03-31", "2001-03-01", admin())) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(ask("2001-3-1", "2001-03-31", admin())) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(ask("2000-01-01", "2001-03-31", admin())) == grpc.StatusCode.INVALID_ARGUMENT


async def test_artists_see_daily_streams_of_their_own_artists_only(
    playback, running_mesh, catalog_of_march
) -> None:
    x, y, a, b = (catalog_of_march[k] for k in "XYAB")
    (manager,) = await seed_accounts(running_mesh.database_url, 1, roles=("user", "artist"), manages=[x])
    as_manager = manager.metadata

    def daily(artist: str, metadata, start: str = MARCH_2001[0], end: str = MARCH_2001[1]) -> object:
        request = playback_pb2.ListArtistDailyStreamsRequest(artist_id=artist, start=start, end=end)
        return playback.stub.ListArtistDailyStreams(request, metadata=metadata)

    reply = await daily(x, as_manager)
    day2 = sorted([("2001-03-02", a, 2), ("2001-03-02", b, 1)], key=lambda r: r[1])  # by date, then track
    assert [(r.date, r.track_id, r.streams) for r in reply.rows] == [*day2, ("2001-03-31", a, 1)]
    assert reply.artist_id == x
    assert await code_of(daily(y, as_manager)) == grpc.StatusCode.PERMISSION_DENIED
    listener = user_metadata(new_user_id(), roles="user")
    assert await code_of(daily(x, listener)) == grpc.StatusCode.PERMISSION_DENIED
    # auth_svc has no such account: the answer says so, instead of "retry later".
    stranger = user_metadata(new_user_id(), roles="user,artist")
    assert await code_of(daily(x, stranger)) == grpc.StatusCode.UNAUTHENTICATED
    seen_by_admin = await daily(f"spotify:artist:{y}", admin())
    assert [(r.date, r.streams) for r in seen_by_admin.rows] == [("2001-03-02", 2), ("2001-03-31", 1)]
    april = await daily(x, admin(), "2001-04-01", "2001-04-01")
    assert [(r.date, r.track_id, r.streams) for r in april.rows] == [("2001-04-01", b, 1)]
