"""The SDK's player core through Envoy: a demo track played end to end into a WAV file, reported
so that it counts exactly once past the threshold, and a longer track played over a link whose
speed the test sets, switching quality down and back up mid-track with continuous output."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import av
import httpx
import numpy as np
import sqlalchemy as sa
from spotify.catalog.v1 import catalog_pb2
from spotify.playback.v1 import playback_pb2

from devdata import demo
from meshkit import signing
from sdk.client import MeshClient
from sdk.events import EventReporter
from sdk.player import AdaptivePlayer, CallbackSink, Played, Policy, WavSink
from tests.sdk.conftest import counted_keys
from tests.support import until


def session_keys(engine: sa.Engine, user_id: str) -> list[str]:
    """The client's keys of the user's counted streams."""
    return [key.partition(":")[2] for key in counted_keys(engine, user_id)]


def test_a_track_plays_to_a_wav_and_counts_once_only_past_the_threshold(
    premium: tuple[MeshClient, str], database_engine: sa.Engine, tmp_path: Path
) -> None:
    client, user_id = premium
    track = client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID))
    reporter = EventReporter(client, tmp_path / "events.db", device_id="speaker-1", device_type="speaker")
    player = AdaptivePlayer(client, reporter=reporter, user_id=user_id)

    # Stopped before half of this short track: reported, never counted.
    early = player.play(track.id, WavSink(tmp_path / "early.wav"), stop_at_ms=track.duration_ms // 2 - 500)
    assert early.stopped_at_ms is not None and early.stopped_at_ms < track.duration_ms // 2
    whole = player.play(track.id, WavSink(tmp_path / "whole.wav"))
    assert reporter.flush().pending == 0

    with wave.open(str(tmp_path / "whole.wav")) as written:
        seconds = written.getnframes() / written.getframerate()
        assert written.getnchannels() == 2 and written.getsampwidth() == 2
    assert abs(seconds * 1000 - track.duration_ms) <= 10, (seconds, track.duration_ms)
    assert whole.stopped_at_ms is None and whole.first_audio_s > 0

    # Events of one user are consumed in order: once the whole play counted, the early one was
    # judged too, and it did not count.
    keys = until(lambda: session_keys(database_engine, user_id) or None, "the whole play to count", 30)
    assert len(keys) == 1 and keys[0].startswith(f"{user_id}_{track.id}_"), keys
    reporter.close()


class Link:
    """The test's link speed: kbps, or None for as fast as loopback goes."""

    def __init__(self) -> None:
        self.kbps: float | None = None


class _Paced(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, link: Link) -> None:
        self.inner, self.link = inner, link

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            for start in range(0, len(chunk), 1024):
                piece = chunk[start : start + 1024]
                if self.link.kbps:
                    time.sleep(len(piece) * 8 / 1000 / self.link.kbps)
                yield piece

    def close(self) -> None:
        self.inner.close()


class LinkTransport(httpx.HTTPTransport):
    """Real HTTP through Envoy, with response bodies delivered at the link's speed."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reply = super().handle_request(request)
        assert isinstance(reply.stream, httpx.SyncByteStream)
        return httpx.Response(
            reply.status_code,
            headers=reply.headers,
            stream=_Paced(reply.stream, self.link),
            extensions=reply.extensions,
        )


def reference(url: str) -> np.ndarray:
    """The whole rendition decoded in one go: (channels, samples) float32."""
    data = httpx.get(url, timeout=30).content
    with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def stitched(played: Played, decoded: dict[int, np.ndarray], total: int) -> np.ndarray:
    """What the output must be: each stretch between switches is its quality's whole-file decode."""
    edges = [0, *(s.at_ms * played.sample_rate // 1000 for s in played.switches), total]
    kbps = [played.started_kbps, *(s.to_kbps for s in played.switches)]
    return np.concatenate(
        [decoded[k][:, a:b] for k, a, b in zip(kbps, edges[:-1], edges[1:], strict=True)], axis=1
    )


def test_quality_follows_the_link_down_and_up_and_the_audio_stays_continuous(
    premium: tuple[MeshClient, str], long_track: str
) -> None:
    client, _ = premium
    link = Link()
    blocks: list[np.ndarray] = []

    # The test's link: fast for 4 s of audio, then 150 kbps (under 160 kbps with a margin, over
    # 96), fast again from 10 s.
    def follow(position_ms: int, kbps: int, measured: float) -> None:
        link.kbps = 150.0 if 4_000 <= position_ms < 10_000 else None

    with httpx.Client(transport=LinkTransport(link), timeout=30) as http:
        player = AdaptivePlayer(client, http=http, policy=Policy(), on_progress=follow)
        played = player.play(long_track, CallbackSink(blocks.append))
        tiers = {tier.kbps: tier for tier in player.tiers(player.stream(long_track))}
        assert sorted(tiers) == [96, 160, 320]
        total = player.seek_index(tiers[96]).total_samples
    output = np.concatenate(blocks, axis=1)
    assert output.shape == (2, total), output.shape  # nothing lost, nothing repeated
    downs = [s for s in played.switches if s.to_kbps < s.from_kbps]
    ups = [s for s in played.switches if s.to_kbps > s.from_kbps]
    assert downs and 4_000 < downs[0].at_ms <= 7_000, played.switches  # noticed within 3 s
    assert any(s.to_kbps == 96 and s.at_ms < 10_000 for s in downs), played.switches  # 150 kbps carries 96
    assert ups and ups[0].at_ms >= 10_000 and played.switches[-1].to_kbps > 96, played.switches
    assert played.bytes_by_kbps[96] > 0

    # Around each switch the output is the old quality's audio up to it and the new one's from it,
    # sample for sample as a decoder of the whole file makes them.
    decoded = {kbps: reference(tier.url) for kbps, tier in tiers.items()}
    # And everywhere: each stretch is its quality's audio at its place in the track.
    assert np.array_equal(output, stitched(played, decoded, total))
    window = 4096
    for switch in played.switches:
        at = switch.at_ms * played.sample_rate // 1000
        before, after = slice(at - window, at), slice(at, at + window)
        assert np.array_equal(output[:, before], decoded[switch.from_kbps][:, before]), switch
        assert np.array_equal(output[:, after], decoded[switch.to_kbps][:, after]), switch


def expired(url: str) -> str:
    """`url` signed again, for its user and path, with an expiry two hours ago."""
    parts = urlsplit(url)
    user = parse_qs(parts.query)["uid"][0]
    resigned = signing.sign(unquote(parts.path), user, ttl_s=3600, now=time.time() - 7200)
    return f"{parts.scheme}://{parts.netloc}{resigned}"


def test_urls_that_expire_mid_track_are_signed_again_and_the_audio_stays_continuous(
    premium: tuple[MeshClient, str], long_track: str
) -> None:
    client, _ = premium
    link = Link()
    blocks: list[np.ndarray] = []

    def follow(position_ms: int, kbps: int, measured: float) -> None:
        link.kbps = 150.0 if position_ms >= 3_000 else None  # slow from 3 s: a switch down is due

    with httpx.Client(transport=LinkTransport(link), timeout=30) as http:
        player = AdaptivePlayer(client, http=http, on_progress=follow)
        asked: list[playback_pb2.GetStreamUrlResponse] = []
        server = player.stream

        def stream(track_id: str, quality: str = "auto") -> playback_pb2.GetStreamUrlResponse:
            reply = server(track_id, quality)
            if not asked:  # the other qualities' URLs run out before the player needs them
                for alternative in reply.alternatives:
                    alternative.url = expired(alternative.url)
                    alternative.seek_index_url = expired(alternative.seek_index_url)
            asked.append(reply)
            return reply

        player.stream = stream  # type: ignore[method-assign]
        played = player.play(long_track, CallbackSink(blocks.append))
        tiers = {tier.kbps: tier for tier in player.tiers(server(long_track))}
        total = player.seek_index(tiers[96]).total_samples
    output = np.concatenate(blocks, axis=1)

    assert len(asked) == 2, "one refusal, one fresh set of URLs"
    assert played.switches and played.switches[0].to_kbps < played.started_kbps, played.switches
    assert output.shape == (2, total)
    decoded = {kbps: reference(tier.url) for kbps, tier in tiers.items()}
    assert np.array_equal(output, stitched(played, decoded, total))
