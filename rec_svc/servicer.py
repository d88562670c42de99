"""RecommendationService: protobuf in, domain calls, protobuf out.

Track and artist objects in responses are the catalog's own, fetched by the domain module.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from spotify.common.v1 import common_pb2
from spotify.rec.v1 import rec_pb2, rec_pb2_grpc

from meshkit import user_export
from meshkit.context import current_caller
from meshkit.errors import InvalidArgument
from rec_svc import tunables
from rec_svc.recommend import DW_SIZE
from rec_svc.recommendations import Recommendations
from rec_svc.reloading import IndexReloader
from rec_svc.snapshot import Snapshot

SEED_TYPES = {"track": "TRACK", "artist": "ARTIST", "genre": "GENRE"}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class RecommendationServicer(rec_pb2_grpc.RecommendationServiceServicer):
    def __init__(
        self,
        recommendations: Recommendations,
        reloader: IndexReloader,
        public_base_url: str,
        export: user_export.Exporter,
    ) -> None:
        self.recommendations = recommendations
        self.reloader = reloader
        self.base = public_base_url.rstrip("/")
        self.export = export

    # ---- data export ----------------------------------------------------------------------------

    async def ExportUserData(
        self, request: common_pb2.ExportUserDataRequest, context: aio.ServicerContext
    ) -> common_pb2.ExportUserDataResponse:
        return await user_export.answer(request, self.export)

    async def GetDiscoverWeekly(
        self, request: rec_pb2.GetDiscoverWeeklyRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetDiscoverWeeklyResponse:
        user_id = current_caller().require_user()
        if request.limit < 0 or request.limit > DW_SIZE:
            raise InvalidArgument(f"limit must be between 1 and {DW_SIZE}, got {request.limit}")
        mix, _ = await self.recommendations.discover_weekly(user_id)
        tracks = await self.recommendations.tracks(mix.track_ids[: request.limit or DW_SIZE])
        return rec_pb2.GetDiscoverWeeklyResponse(
            tracks=tracks, generated_at=_ts(mix.generated_at), model_version=mix.model_version
        )

    async def GetRadio(
        self, request: rec_pb2.GetRadioRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetRadioResponse:
        which = request.WhichOneof("seed")
        if which is None:
            raise InvalidArgument("one of seed_track_id, seed_artist_id or seed_genre is required")
        kind = {"seed_track_id": "track", "seed_artist_id": "artist", "seed_genre": "genre"}[which]
        track_ids, token = await self.recommendations.radio(
            kind, getattr(request, which), request.page_size, request.page_token
        )
        return rec_pb2.GetRadioResponse(
            tracks=await self.recommendations.tracks(track_ids), next_page_token=token
        )

    async def GetSimilarTracks(
        self, request: rec_pb2.GetSimilarTracksRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetSimilarTracksResponse:
        track_ids = await self.recommendations.similar_tracks(request.id, request.limit)
        return rec_pb2.GetSimilarTracksResponse(tracks=await self.recommendations.tracks(track_ids))

    async def GetSimilarArtists(
        self, request: rec_pb2.GetSimilarArtistsRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetSimilarArtistsResponse:
        artist_ids = await self.recommendations.similar_artists(request.id)
        return rec_pb2.GetSimilarArtistsResponse(artists=await self.recommendations.artists(artist_ids))

    async def GetRecommendations(
        self, request: rec_pb2.GetRecommendationsRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetRecommendationsResponse:
        seeds, track_ids = await self.recommendations.recommendations(
            request.seed_tracks,
            request.seed_artists,
            request.seed_genres,
            request.limit,
            tunables.parse(request),
        )
        return rec_pb2.GetRecommendationsResponse(
            seeds=[
                rec_pb2.RecommendationSeed(
                    afterFilteringSize=s.after_filtering,
                    afterRelinkingSize=s.after_filtering,
                    href=f"{self.base}/v1/{s.seed.kind}s/{s.seed.key}" if s.seed.kind != "genre" else "",
                    id=s.seed.key,
                    initialPoolSize=s.initial_pool,
                    type=SEED_TYPES[s.seed.kind],
                )
                for s in seeds
            ],
            tracks=await self.recommendations.tracks(track_ids),
        )

    async def ListAvailableGenreSeeds(
        self, request: rec_pb2.ListAvailableGenreSeedsRequest, context: aio.ServicerContext
    ) -> rec_pb2.ListAvailableGenreSeedsResponse:
        return rec_pb2.ListAvailableGenreSeedsResponse(genres=await self.recommendations.genre_seeds())

    async def GetIndexStatus(
        self, request: rec_pb2.GetIndexStatusRequest, context: aio.ServicerContext
    ) -> rec_pb2.GetIndexStatusResponse:
        current_caller().require_role("admin")
        return rec_pb2.GetIndexStatusResponse(indexes=_status(self.reloader.holder.current))

    async def ReloadIndexes(
        self, request: rec_pb2.ReloadIndexesRequest, context: aio.ServicerContext
    ) -> rec_pb2.ReloadIndexesResponse:
        current_caller().require_role("admin")
        return rec_pb2.ReloadIndexesResponse(indexes=_status(await self.reloader.reload(request.version)))


def _status(snap: Snapshot | None) -> list[rec_pb2.IndexStatus]:
    if snap is None:
        return []
    return [
        rec_pb2.IndexStatus(
            name=name,
            version=snap.version,
            size=index.live,
            dimensions=index.dim,
            loaded_at=_ts(snap.loaded_at),
            built_at=_ts(snap.built_at),
            path=snap.path,
        )
        for name, index in (("tracks", snap.tracks), ("users", snap.users))
    ]
