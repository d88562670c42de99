"""The SDK player: time to the first PCM frame, cold and warm, and bytes downloaded per minute of
audio at each quality, each beside a floor measured in the same run.

- Time to first audio: `AdaptivePlayer.play` from a new client (cold: connection, stream URL,
  seek index, headers) and from a client that already played (warm), against the floor of the
  same hops done by hand: one GetStreamUrl on a warm channel, then one ranged GET of the file's
  first 64 KiB and PyAV's first decoded frame from it.
- Bytes per minute: what the player downloaded for a whole track at a fixed quality, over the
  quality's nominal bitrate times the track's length (1.0 means not a byte more than the bitrate).

Runs on a private mesh (its own ports and database) with the demo's audio:

    python -m bench.sdk_player [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import av
import httpx
from spotify.playback.v1 import playback_pb2

from bench.edge_vs_direct import login
from devdata import demo
from meshctl import mesh
from sdk.client import MeshClient
from sdk.player import AdaptivePlayer, CallbackSink

QUALITIES = {"low": 96, "normal": 160, "high": 320}


def first_audio_floor(client: MeshClient, http: httpx.Client, track_id: str) -> float:
    started = time.perf_counter()
    reply = client.playback.GetStreamUrl(playback_pb2.GetStreamUrlRequest(track_id=track_id, quality="auto"))
    head = http.get(reply.url, headers={"range": "bytes=0-65535"}).content
    with av.open(io.BytesIO(head), mode="r", format="ogg") as container:
        next(iter(container.decode(audio=0)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with mesh.private_mesh("bench-sdk-", audio_tracks=2) as running:
        token = login(running.envoy_url)["access_token"]
        # The demo account is premium: every quality is offered.
        cold, warm, floor = [], [], []
        with httpx.Client(timeout=30) as http:
            for _ in range(args.rounds):
                with MeshClient(running.envoy_url, token=token) as client:
                    player = AdaptivePlayer(client, http=httpx.Client(timeout=30))
                    cold.append(player.play(demo.DEMO_TRACK_ID, CallbackSink(lambda _: None)).first_audio_s)
                    warm.append(player.play(demo.DEMO_TRACK_ID, CallbackSink(lambda _: None)).first_audio_s)
                    floor.append(first_audio_floor(client, http, demo.DEMO_TRACK_ID))
            print(f"first PCM frame (median of {args.rounds}; floor: stream URL + 64 KiB + first decode)")
            print(f"  {'':6} {'player ms':>10} {'floor ms':>10} {'ratio':>6}")
            floor_ms = statistics.median(floor) * 1000
            for name, runs in (("cold", cold), ("warm", warm)):
                ms = statistics.median(runs) * 1000
                print(f"  {name:6} {ms:10.1f} {floor_ms:10.1f} {ms / floor_ms:6.2f}")

            print("KiB downloaded per minute of audio at a fixed quality, over the file itself (the floor:")
            print("what the encoder made) and over the nominal bitrate (Vorbis is variable bitrate)")
            heading = ("quality", "kbps", "KiB/min", "file", "ratio", "nominal", "ratio")
            print("  {:8} {:>5} {:>9} {:>9} {:>6} {:>9} {:>6}".format(*heading))
            with MeshClient(running.envoy_url, token=token) as client:
                player = AdaptivePlayer(client, http=http)
                for quality, kbps in QUALITIES.items():
                    played = player.play(demo.DEMO_TRACK_ID, CallbackSink(lambda _: None), quality=quality)
                    (tier,) = [
                        t for t in player.tiers(player.stream(demo.DEMO_TRACK_ID, quality)) if t.kbps == kbps
                    ]
                    minutes = played.duration_ms / 60_000
                    got = sum(played.bytes_by_kbps.values()) / 1024 / minutes
                    file = player.seek_index(tier).file_size / 1024 / minutes
                    nominal = kbps * 1000 / 8 * 60 / 1024
                    print(
                        f"  {quality:8} {kbps:5d} {got:9.0f} {file:9.0f} {got / file:6.2f}"
                        f" {nominal:9.0f} {got / nominal:6.2f}"
                    )


if __name__ == "__main__":
    main()
