"""Test doubles for playback_svc's neighbours: catalog_svc, auth_svc and library_svc, over real gRPC.

Tests register exactly the tracks, durations, artists and audio files they need (real Ogg files
under a temporary storage root) on this in-process CatalogService, which speaks catalog's
contract. It runs on its own threads (a sync grpc server), so subprocesses (the standalone
counter) can call it too, whatever the test's event loop is doing.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from spotify.library.v1 import library_pb2, library_pb2_grpc

from meshkit import ids

QUALITY_BY_KBPS = {
    96: catalog_pb2.AUDIO_QUALITY_LOW,
    160: catalog_pb2.AUDIO_QUALITY_NORMAL,
    320: catalog_pb2.AUDIO_QUALITY_HIGH,
}


def _artist(artist_id: str) -> catalog_pb2.Artist:
    return catalog_pb2.Artist(
        id=artist_id, name=f"Artist {artist_id[:5]}", type="artist", uri=f"spotify:artist:{artist_id}"
    )


@dataclass
class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    """Tracks and audio files the tests register; counts calls so caching can be asserted."""

    tracks: dict[str, catalog_pb2.Track] = field(default_factory=dict)
    files: dict[str, list[catalog_pb2.AudioFile]] = field(default_factory=dict)
    albums: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_track(
        self,
        duration_ms: int = 180_000,
        artists: int = 1,
        files: Iterable[tuple[int, str, str]] = (),
        artist_ids: Iterable[str] = (),
        name: str = "Test Track",
    ) -> str:
        """Register a track (and its audio files as (kbps, storage_path, seek_index_path)); returns its id."""
        track_id = ids.encode(uuid.uuid4())
        artist_list = list(artist_ids) or [ids.encode(uuid.uuid4()) for _ in range(artists)]
        track = catalog_pb2.Track(
            id=track_id,
            name=name,
            duration_ms=duration_ms,
            type="track",
            uri=f"spotify:track:{track_id}",
            artists=[_artist(a) for a in artist_list],
            album=catalog_pb2.Album(id=ids.encode(uuid.uuid4()), name="Test Album", type="album"),
            track_number=1,
            disc_number=1,
        )
        with self.lock:
            self.tracks[track_id] = track
        self.set_files(track_id, files)
        return track_id

    def set_files(self, track_id: str, files: Iterable[tuple[int, str, str]]) -> None:
        """Replace a track's audio files, given as (kbps, storage_path, seek_index_path)."""
        duration_ms = self.tracks[track_id].duration_ms
        with self.lock:
            self.files[track_id] = [
                catalog_pb2.AudioFile(
                    id=ids.encode(uuid.uuid4()),
                    track_id=track_id,
                    quality=QUALITY_BY_KBPS[kbps],
                    codec="vorbis",
                    bitrate_kbps=kbps,
                    storage_path=path,
                    seek_index_path=seek,
                    duration_ms=duration_ms,
                )
                for kbps, path, seek in files
            ]

    def add_album(self, track_ids: list[str]) -> str:
        album_id = ids.encode(uuid.uuid4())
        with self.lock:
            self.albums[album_id] = list(track_ids)
        return album_id

    def _count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def BatchGetTracks(self, request, context):
        self._count("BatchGetTracks")
        wanted = [part for part in request.ids.split(",") if part]
        if len(wanted) > 50:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at most 50 ids")
        return catalog_pb2.BatchGetTracksResponse(tracks=[self.tracks[t] for t in wanted if t in self.tracks])

    def GetTrack(self, request, context):
        self._count("GetTrack")
        track = self.tracks.get(request.id.removeprefix("spotify:track:"))
        if track is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"track {request.id} not found")
        return track

    def ListAlbumTracks(self, request, context):
        self._count("ListAlbumTracks")
        album = self.albums.get(request.id)
        if album is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"album {request.id} not found")
        page = album[request.offset : request.offset + (request.limit or 20)]
        return catalog_pb2.TrackPage(
            items=[self.tracks[t] for t in page], total=len(album), limit=request.limit, offset=request.offset
        )

    def ListTrackAudioFiles(self, request, context):
        self._count("ListTrackAudioFiles")
        if request.track_id not in self.tracks:
            context.abort(grpc.StatusCode.NOT_FOUND, f"track {request.track_id} not found")
        return catalog_pb2.ListTrackAudioFilesResponse(audio_files=self.files.get(request.track_id, []))


@dataclass
class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    """GetMe for the caller named by x-user-id: which artists they manage."""

    artists_of: dict[str, list[str]] = field(default_factory=dict)

    def GetMe(self, request, context):
        metadata = dict(context.invocation_metadata())
        user_id = metadata.get("x-user-id", "")
        if not user_id:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no user")
        return auth_pb2.User(id=user_id, artist_ids=self.artists_of.get(user_id, []))


@dataclass
class FakeLibrary(library_pb2_grpc.LibraryServiceServicer):
    """ListPlaylistItems over playlists the tests register (track objects come from the fake catalog)."""

    catalog: FakeCatalog
    playlists: dict[str, list[str]] = field(default_factory=dict)

    def add_playlist(self, track_ids: list[str]) -> str:
        playlist_id = ids.encode(uuid.uuid4())
        self.playlists[playlist_id] = list(track_ids)
        return playlist_id

    def ListPlaylistItems(self, request, context):
        items = self.playlists.get(request.id)
        if items is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"playlist {request.id} not found")
        page = items[request.offset : request.offset + (request.limit or 20)]
        return library_pb2.PlaylistItemPage(
            items=[library_pb2.PlaylistItem(item=self.catalog.tracks[t]) for t in page],
            total=len(items),
            limit=request.limit,
            offset=request.offset,
        )


@dataclass
class Neighbours:
    """The fake services on one port."""

    address: str
    catalog: FakeCatalog
    auth: FakeAuth
    library: FakeLibrary
    server: grpc.Server


def start_neighbours() -> Neighbours:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    catalog, auth = FakeCatalog(), FakeAuth()
    library = FakeLibrary(catalog)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(catalog, server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
    library_pb2_grpc.add_LibraryServiceServicer_to_server(library, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return Neighbours(f"127.0.0.1:{port}", catalog, auth, library, server)
