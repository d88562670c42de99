"""How a channel spreads calls over replicas and which calls gRPC may retry on another one."""

from __future__ import annotations

import json

from spotify.catalog.v1 import catalog_pb2  # noqa: F401 (registers CatalogService's descriptors)
from spotify.playback.v1 import playback_pb2  # noqa: F401

from meshkit import channels


def test_calls_go_round_robin_and_only_reads_retry() -> None:
    config = json.loads(channels.service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["retryThrottling"]["maxTokens"] > 0
    (method_config,) = config["methodConfig"]
    retried = {(n["service"], n["method"]) for n in method_config["name"]}
    assert ("spotify.catalog.v1.CatalogService", "BatchGetTracks") in retried
    assert ("spotify.catalog.v1.CatalogService", "GetTrack") in retried
    assert ("spotify.playback.v1.PlaybackService", "GetPlaybackState") in retried
    # Writes, and a client-streaming upload, are never retried by the channel.
    assert ("spotify.catalog.v1.CatalogService", "CreateTrack") not in retried
    assert ("spotify.catalog.v1.CatalogService", "IngestTrackAudio") not in retried
    assert ("spotify.playback.v1.PlaybackService", "ReportPlaybackEvents") not in retried
    assert all(m.startswith(("Get", "List", "BatchGet", "Search", "Check")) for _, m in retried)
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_endpoints_of_a_target() -> None:
    assert channels.endpoints("ipv4:127.0.0.1:1,127.0.0.1:2") == ["127.0.0.1:1", "127.0.0.1:2"]
    assert channels.endpoints("127.0.0.1:50065") == ["127.0.0.1:50065"]
    assert channels.endpoints("dns:///localhost:50065") == ["127.0.0.1:50065"]
