"""A stand-in catalog_svc for test_counter_crash.py's standalone counter, over real gRPC.

Only that test still uses it (every other playback test runs against the mesh's catalog_svc,
auth_svc and library_svc); it goes once that test moves to the real catalog. The counter asks
catalog for nothing but BatchGetTracks. It runs on its own threads (a sync grpc server), so the
counter subprocess can call it whatever the test's event loop is doing.
"""

from __future__ import annotations

import threading
import uuid
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from meshkit import ids


def _artist(artist_id: str) -> catalog_pb2.Artist:
    return catalog_pb2.Artist(
        id=artist_id, name=f"Artist {artist_id[:5]}", type="artist", uri=f"spotify:artist:{artist_id}"
    )


@dataclass
class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    """Tracks the test registers, with their durations and credited artists."""

    tracks: dict[str, catalog_pb2.Track] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_track(self, duration_ms: int = 180_000, artists: int = 1) -> str:
        """Register a track; returns its id."""
        track_id = ids.encode(uuid.uuid4())
        track = catalog_pb2.Track(
            id=track_id,
            name="Test Track",
            duration_ms=duration_ms,
            type="track",
            uri=f"spotify:track:{track_id}",
            artists=[_artist(ids.encode(uuid.uuid4())) for _ in range(artists)],
        )
        with self.lock:
            self.tracks[track_id] = track
        return track_id

    def BatchGetTracks(self, request, context):
        wanted = [part for part in request.ids.split(",") if part]
        if len(wanted) > 50:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at most 50 ids")
        with self.lock:
            found = [self.tracks[t] for t in wanted if t in self.tracks]
        return catalog_pb2.BatchGetTracksResponse(tracks=found)


@dataclass
class Neighbours:
    """The stand-in on its port."""

    address: str
    catalog: FakeCatalog
    server: grpc.Server


def start_neighbours() -> Neighbours:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    catalog = FakeCatalog()
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(catalog, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return Neighbours(f"127.0.0.1:{port}", catalog, server)
