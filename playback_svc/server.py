"""playback_svc bootstrap: the Kafka producer and its servicer."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack

from grpc import aio
from spotify.playback.v1 import playback_pb2, playback_pb2_grpc

from meshkit.config import Settings
from meshkit.kafka import Producer
from meshkit.server import run
from playback_svc.servicer import PlaybackServicer

SERVICE = "playback_svc"


async def setup(server: aio.Server, settings: Settings, stack: AsyncExitStack) -> Sequence[str]:
    producer = Producer(settings.kafka_bootstrap, client_id=SERVICE)
    stack.callback(producer.close)
    playback_pb2_grpc.add_PlaybackServiceServicer_to_server(PlaybackServicer(producer), server)
    return [playback_pb2.DESCRIPTOR.services_by_name["PlaybackService"].full_name]


def main() -> None:
    run(SERVICE, setup)
